// Host memory the guest sees as RAM where a BAR of a crossover NIC decodes:
// one KVM memory slot plus the device models' translation of that range
// (a RamMemory region). The window's two halves and the ring area are each
// one of these; the BAR moves, the host memory behind it does not.
//
// Threads: place() and recreate_slot() run where the BAR moved or its
// backing changed (setup, a vCPU in a config write, the I/O thread with
// the vCPUs paused); gpa() from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "xover/kvm/vm.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::crossover {

class BarMemorySlot {
public:
    // `host`: `size` bytes that stay mapped for this object's lifetime.
    BarMemorySlot(kvm::Vm& vm, vmm::RamMemory& memory, std::uint32_t slot, std::uint64_t size, std::uint8_t* host)
        : vm_(vm), memory_(memory), slot_(slot), size_(size), host_(host) {}
    // The owner removes it (place(0)) first: that can throw.
    ~BarMemorySlot() = default;
    BarMemorySlot(const BarMemorySlot&) = delete;
    BarMemorySlot& operator=(const BarMemorySlot&) = delete;

    // The memory now appears at `gpa` (0: nowhere). All or nothing: a slot
    // that KVM or the memory map refuses (an overlap) leaves it nowhere.
    // Throws xover::Error.
    void place(std::uint64_t gpa);
    // Deletes and creates the KVM slot again at the same place: the host
    // mapping at `host` was replaced, and a KVM that does not follow host
    // mappings must look again.
    void recreate_slot();
    std::uint64_t gpa() const { return gpa_.load(std::memory_order_acquire); }

private:
    kvm::Vm& vm_;
    vmm::RamMemory& memory_;
    std::uint32_t slot_;
    std::uint64_t size_;
    std::uint8_t* host_;
    int region_ = -1;
    std::atomic<std::uint64_t> gpa_{0};
};

}  // namespace xover::crossover
