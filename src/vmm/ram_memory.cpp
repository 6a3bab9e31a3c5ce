#include "xover/vmm/ram_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::vmm {

RamMemory::RamMemory(std::uint64_t bytes) : size_(bytes) {
    if (bytes < layout::kHighRamStart) throw Error("guest memory {} bytes is too small (at least 1 MiB)", bytes);
    int fd = ::memfd_create("xover-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) throw system_error("memfd_create for guest RAM");
    memfd_.reset(fd);
    if (::ftruncate(fd, off_t(bytes)) < 0) throw system_error(fmt::format("ftruncate guest RAM to {} bytes", bytes));
    // The size never changes: whoever maps it (a peer VM) can trust it.
    if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) throw system_error("seal guest RAM memfd");
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) throw system_error(fmt::format("mmap {} bytes of guest RAM", bytes));
    base_ = static_cast<std::uint8_t*>(p);
    std::uint64_t low = layout::ram_below_hole(bytes);
    regions_.push_back(Region{0, low, 0, base_});
    if (std::uint64_t high = layout::ram_above_hole(bytes))
        regions_.push_back(Region{layout::kMmioHoleEnd, high, low, base_ + low});
}

RamMemory::~RamMemory() {
    if (base_) ::munmap(base_, size_);
}

std::span<std::uint8_t> RamMemory::span(std::uint64_t gpa, std::uint64_t len) {
    if (len == 0 || gpa + len < gpa) return {};
    for (const Region& r : regions_) {
        if (gpa >= r.gpa && gpa - r.gpa < r.size && len <= r.size - (gpa - r.gpa))
            return {r.host + (gpa - r.gpa), std::size_t(len)};
    }
    for (Extra& e : extra_) {
        std::uint64_t size = e.size.load(std::memory_order_acquire);
        if (size == 0) continue;
        std::uint64_t base = e.gpa.load(std::memory_order_acquire);
        if (gpa >= base && gpa - base < size && len <= size - (gpa - base))
            return {e.host.load(std::memory_order_acquire) + (gpa - base), std::size_t(len)};
    }
    return {};
}

unsigned RamMemory::add_region(std::uint64_t gpa, std::uint64_t size, std::uint8_t* host) {
    for (unsigned i = 0; i < kMaxExtra; ++i) {
        Extra& e = extra_[i];
        bool expected = false;
        if (!e.used.compare_exchange_strong(expected, true)) continue;
        e.host.store(host, std::memory_order_release);
        e.gpa.store(gpa, std::memory_order_release);
        e.size.store(size, std::memory_order_release);
        return i;
    }
    throw Error("guest memory: more than {} extra regions", kMaxExtra);
}

void RamMemory::remove_region(unsigned handle) {
    if (handle >= kMaxExtra) return;
    Extra& e = extra_[handle];
    e.size.store(0, std::memory_order_release);
    e.used.store(false, std::memory_order_release);
}

}  // namespace xover::vmm
