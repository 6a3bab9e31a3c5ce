#include "xover/crossover/ring_area.hpp"

#include <sys/mman.h>

#include <spdlog/spdlog.h>

#include "xover/crossover/shared_memory.hpp"
#include "xover/error.hpp"

namespace xover::crossover {

RingArea::RingArea(const std::string& name, kvm::Vm& vm, vmm::RamMemory& memory, std::uint32_t slot)
    : name_(name) {
    memfd_ = create_sealed_memfd("xover-rings-" + name, kSize);
    void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_.get(), 0);
    if (p == MAP_FAILED) throw system_error(fmt::format("{}: mapping the ring area", name));
    host_ = static_cast<std::uint8_t*>(p);
    slot_.emplace(vm, memory, slot, kSize, host_);
}

RingArea::~RingArea() {
    try {
        place(0);
    } catch (const std::exception& e) {
        spdlog::warn("{}: removing the ring area's memory slot: {}", name_, e.what());
    }
    ::munmap(host_, kSize);
}

void RingArea::place(std::uint64_t gpa) {
    if (gpa == this->gpa()) return;
    slot_->place(gpa);
    if (gpa) spdlog::debug("{}: ring area at {:#x} ({} bytes)", name_, gpa, kSize);
}

}  // namespace xover::crossover
