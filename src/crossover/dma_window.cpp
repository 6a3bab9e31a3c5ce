#include "xover/crossover/dma_window.hpp"

#include <sys/mman.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "xover/crossover/shared_memory.hpp"
#include "xover/error.hpp"

namespace xover::crossover {

DmaWindow::DmaWindow(const std::string& name, std::uint64_t size, kvm::Vm& vm, vmm::RamMemory& memory,
                     std::uint32_t first_slot)
    : name_(name), size_(size) {
    if (size < 8192 || (size & (size - 1)) != 0)
        throw Error("{}: DMA window of {} bytes: expected a power of two of at least 8 KiB", name, size);
    private_ = create_sealed_memfd("xover-window-" + name, size);
    tx_element_ = create_sealed_memfd("xover-window-tx-" + name, size / 2);
    void* reserved = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) throw system_error("reserving address space for the DMA window");
    base_ = static_cast<std::uint8_t*>(reserved);
    void* view = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, private_.get(), 0);
    if (view == MAP_FAILED) {
        ::munmap(base_, size_);
        throw system_error("mapping the DMA window's private memory");
    }
    private_view_ = static_cast<std::uint8_t*>(view);
    void* element = ::mmap(nullptr, size / 2, PROT_READ | PROT_WRITE, MAP_SHARED, tx_element_.get(), 0);
    if (element == MAP_FAILED) {
        ::munmap(private_view_, size_);
        ::munmap(base_, size_);
        throw system_error("mapping the DMA window's TX element");
    }
    element_view_ = static_cast<std::uint8_t*>(element);
    map_fixed(Half::Tx, private_.get(), 0);
    map_fixed(Half::Rx, private_.get(), size / 2);
    for (Half h : {Half::Tx, Half::Rx})
        slots_[unsigned(h)].emplace(vm, memory, first_slot + unsigned(h), half_size(), base_ + offset(h));
    kvm_follows_mappings_ = vm.follows_host_mappings();
}

DmaWindow::~DmaWindow() {
    try {
        place(0);
    } catch (const std::exception& e) {
        spdlog::warn("{}: removing the DMA window's memory slots: {}", name_, e.what());
    }
    if (element_view_) ::munmap(element_view_, size_ / 2);
    if (private_view_) ::munmap(private_view_, size_);
    if (base_) ::munmap(base_, size_);
}

void DmaWindow::map_fixed(Half half, int fd, std::uint64_t fd_offset) {
    void* at = base_ + offset(half);
    void* p = ::mmap(at, half_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off_t(fd_offset));
    if (p == MAP_FAILED) throw system_error(fmt::format("{}: mapping the DMA window's {} half", name_,
                                                        half == Half::Tx ? "TX" : "RX"));
}

void DmaWindow::place(std::uint64_t gpa) {
    if (gpa == this->gpa()) return;
    if (this->gpa()) {
        for (Half h : {Half::Tx, Half::Rx}) slot(h).place(0);
        gpa_.store(0, std::memory_order_release);
    }
    if (!gpa) return;
    // All or nothing: a half that KVM or the memory map refuses (an overlap)
    // takes back what the other half got, so no slot stays behind.
    try {
        for (Half h : {Half::Tx, Half::Rx}) slot(h).place(gpa + offset(h));
    } catch (...) {
        slot(Half::Tx).place(0);
        throw;
    }
    gpa_.store(gpa, std::memory_order_release);
    spdlog::debug("{}: DMA window at {:#x} ({} bytes)", name_, gpa, size_);
}

void DmaWindow::attach(Half half, int fd, bool copy_in) {
    // The guest's half would fault (and KVM_RUN fail) on memory cut away.
    try {
        require_shareable_memfd(fd, half_size());
    } catch (const Error& e) {
        throw Error("{}: window element: {}", name_, e.what());
    }
    if (copy_in) {
        SharedMapping element(fd, half_size());
        std::memcpy(element.data(), base_ + offset(half), half_size());
    }
    map_fixed(half, fd, 0);
    slot(half).recreate_slot();
    attached_[unsigned(half)] = true;
    remaps_.fetch_add(1, std::memory_order_relaxed);
}

void DmaWindow::detach(Half half) { to_private(half, true); }

void DmaWindow::detach_running(Half half) { to_private(half, !kvm_follows_mappings_); }

void DmaWindow::to_private(Half half, bool recreate_slot) {
    if (!attached_[unsigned(half)]) return;
    std::memcpy(private_view_ + offset(half), base_ + offset(half), half_size());
    map_fixed(half, private_.get(), offset(half));
    if (recreate_slot) slot(half).recreate_slot();
    attached_[unsigned(half)] = false;
    remaps_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace xover::crossover
