// A window NIC's ring area: a small memory BAR of its own, RAM for the
// guest, backed by a memfd of the owner's. A driver that follows the
// window contract puts its descriptor rings (e1000 RX/TX descriptors,
// virtqueues) here, as it puts its buffers in the DMA window. Every link of
// the NIC hands the peer this memfd; a window link hands it, with the
// window's elements, instead of the guest's RAM (architecture.md §7).
//
// It is a BAR of its own, not a part of the window's BAR, so the window's
// halves stay where drivers already find them (each half is half the
// window BAR).
//
// Host side: one MAP_SHARED mapping of the memfd, fixed for the area's
// lifetime; the memory slot and the guest-memory translation follow the
// BAR. Threads: place() runs where the BAR moved (setup, or a vCPU in a
// config write); gpa() from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "xover/crossover/bar_memory_slot.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/kvm/vm.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::crossover {

class RingArea {
public:
    // Room for both rings of either model at their largest queue sizes
    // with 4 KiB alignment; a power of two, as a BAR is.
    static constexpr std::uint64_t kSize = 64 << 10;
    // KVM memory slots the area takes.
    static constexpr std::uint32_t kMemorySlots = 1;

    // `slot` is the area's KVM memory slot. Throws xover::Error.
    RingArea(const std::string& name, kvm::Vm& vm, vmm::RamMemory& memory, std::uint32_t slot);
    ~RingArea();
    RingArea(const RingArea&) = delete;
    RingArea& operator=(const RingArea&) = delete;

    // The BAR now decodes at `gpa` (0: it does not). All or nothing: a slot
    // KVM or the memory map refuses leaves the area unplaced. Throws
    // xover::Error.
    void place(std::uint64_t gpa);
    std::uint64_t gpa() const { return slot_->gpa(); }
    std::uint64_t size() const { return kSize; }
    int fd() const { return memfd_.get(); }
    std::uint8_t* host() const { return host_; }

private:
    std::string name_;
    kvm::UniqueFd memfd_;
    std::uint8_t* host_ = nullptr;
    std::optional<BarMemorySlot> slot_;  // made once host_ is mapped
};

}  // namespace xover::crossover
