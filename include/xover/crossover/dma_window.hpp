// The DMA window of a crossover NIC in window mode (the dynamic memory
// remapper's unit): a guest-physical range, advertised as a BAR of the NIC,
// in two halves — TX and RX — each its own KVM memory slot.
//
// Host side: one reserved virtual range; each half is a MAP_SHARED mapping
// placed there with MAP_FIXED, either of the window's private memfd or of
// a link's shared element. Swapping a half (attach/detach) replaces that
// mapping at the same address, copies the contents across, and re-creates
// the half's memory slot (delete with size 0, then create), so the guest
// and the device models (through RamMemory's extra region, whose host
// address never changes) see the new backing at once.
//
// The window also owns this NIC's TX element: the memfd its TX half is
// swapped onto when a window link comes up; the broker hands it to the
// peer, which maps it onto its RX half. One element per direction. The
// window keeps a view of it of its own (tx_element()), so this process can
// write the peer's RX buffers there while its TX half stays private: a
// window link whose rings did not start together copies into them.
//
// Threads: place() runs on the thread that moved the BAR (setup or a vCPU
// in a config write); attach()/detach() on the I/O thread with every vCPU
// paused and the NIC's device lock held; detach_running() under the device
// lock with the guest running.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "xover/crossover/bar_memory_slot.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/kvm/vm.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::crossover {

inline constexpr std::uint64_t kDefaultWindowSize = 2ull << 20;
inline constexpr std::uint32_t kWindowSlotBytes = 2048;  // TX/RX slot k lives at half offset k*2048

class DmaWindow {
public:
    enum class Half : unsigned { Tx = 0, Rx = 1 };
    // KVM memory slots a window takes: one per half.
    static constexpr std::uint32_t kMemorySlots = 2;

    // `size`: the whole window (a power of two, at least 8 KiB). Slots
    // first_slot and first_slot+1 are this window's. Throws xover::Error.
    DmaWindow(const std::string& name, std::uint64_t size, kvm::Vm& vm, vmm::RamMemory& memory,
              std::uint32_t first_slot);
    ~DmaWindow();
    DmaWindow(const DmaWindow&) = delete;
    DmaWindow& operator=(const DmaWindow&) = delete;

    std::uint64_t size() const { return size_; }
    std::uint64_t half_size() const { return size_ / 2; }
    int tx_element_fd() const { return tx_element_.get(); }
    // Host view of the TX element, whether or not the TX half is on it.
    std::uint8_t* tx_element() const { return element_view_; }

    // The BAR now decodes at `gpa` (0: it does not): memory slots and the
    // guest-memory translation follow.
    void place(std::uint64_t gpa);
    std::uint64_t gpa() const { return gpa_.load(std::memory_order_acquire); }
    std::uint64_t half_gpa(Half half) const {
        std::uint64_t g = gpa();
        return g ? g + offset(half) : 0;
    }

    // Maps `half` onto memfd `fd` (at least half_size() bytes), copying the
    // half's contents into it first when `copy_in`. Throws xover::Error.
    void attach(Half half, int fd, bool copy_in);
    // Back to the private memfd, copying the element's contents back.
    void detach(Half half);
    // detach() without pausing anyone: only the host mapping is replaced.
    // KVM follows the host's page tables (KVM_CAP_SYNC_MMU), so the guest
    // sees its private memory from its next access, and no vCPU ever finds
    // the slot missing. For a vCPU thread in the exit of its guest's own
    // ring reset: nothing of that guest writes the half meanwhile. A KVM
    // without that capability gets the slot re-created as detach() does.
    void detach_running(Half half);
    bool attached(Half half) const { return attached_[unsigned(half)]; }
    // Host view of `half` (whatever backs it now: private memory or the
    // link's element). Stable for the window's lifetime.
    std::uint8_t* host(Half half) const { return base_ + offset(half); }
    std::uint64_t remaps() const { return remaps_.load(std::memory_order_relaxed); }

private:
    std::uint64_t offset(Half half) const { return half == Half::Tx ? 0 : size_ / 2; }
    void map_fixed(Half half, int fd, std::uint64_t fd_offset);
    void to_private(Half half, bool recreate_slot);
    BarMemorySlot& slot(Half half) { return *slots_[unsigned(half)]; }

    std::string name_;
    std::uint64_t size_;
    kvm::UniqueFd private_;
    kvm::UniqueFd tx_element_;
    std::uint8_t* base_ = nullptr;          // the reserved range the guest's window lives in
    std::uint8_t* private_view_ = nullptr;  // a second mapping of the private memfd (copy back)
    std::uint8_t* element_view_ = nullptr;  // the TX element, always mapped (half_size() bytes)
    std::atomic<std::uint64_t> gpa_{0};
    std::array<bool, 2> attached_{};
    std::array<std::optional<BarMemorySlot>, 2> slots_;  // one per half, made once base_ is reserved
    std::atomic<std::uint64_t> remaps_{0};
    bool kvm_follows_mappings_ = false;  // KVM_CAP_SYNC_MMU
};

}  // namespace xover::crossover
