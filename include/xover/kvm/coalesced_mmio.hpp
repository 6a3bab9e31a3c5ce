// KVM's coalesced-MMIO ring: guest writes to a registered zone do not exit
// to userspace; the kernel appends them here (an in-kernel exit, ~10x
// cheaper than a userspace one on this project's hosts) and userspace
// applies them later, in order. The ring is one page per VM, mapped in
// every vCPU's kvm_run area at the page KVM_CAP_COALESCED_MMIO names.
//
// The kernel is the only producer (it advances `last`); consumers (any
// thread of the VMM) serialize on the ring's mutex and advance `first`.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>

namespace xover::kvm {

class CoalescedMmioRing {
public:
    // `page` is the ring page (header + entries), `page_size` its size.
    CoalescedMmioRing(void* page, std::size_t page_size);

    // One posted write: address, bytes (1..8), port I/O or MMIO.
    struct Write {
        std::uint64_t address;
        std::span<const std::uint8_t> data;
        bool pio;
    };

    // Applies every write the kernel has appended, oldest first, through
    // `apply(const Write&)`. Thread-safe; returns how many were applied.
    template <class Apply>
    std::size_t drain(Apply&& apply) {
        if (empty()) return 0;
        std::lock_guard lock(mutex_);
        std::size_t applied = 0;
        std::uint32_t first = header().first;
        const std::uint32_t last = load_last();
        if (first >= capacity_ || last >= capacity_) return 0;  // not a ring KVM wrote
        while (first != last) {
            const kvm_coalesced_mmio& entry = entries_[first];
            std::uint32_t len = entry.len <= sizeof entry.data ? entry.len : std::uint32_t(sizeof entry.data);
            apply(Write{entry.phys_addr, {entry.data, len}, entry.pio != 0});
            first = (first + 1) % capacity_;
            store_first(first);
            ++applied;
        }
        if (applied) drains_.fetch_add(1, std::memory_order_release);
        return applied;
    }

    // Nothing waits (a lock-free peek; exact only for the consumer).
    bool empty() const;
    // How many drains that applied something have run (stale checks).
    std::uint64_t drains() const { return drains_.load(std::memory_order_acquire); }
    std::uint32_t capacity() const { return capacity_; }

private:
    struct Header {
        std::uint32_t first;  // the consumer's: next entry to apply
        std::uint32_t last;   // the kernel's: next entry it fills
    };
    Header& header() const { return *header_; }
    std::uint32_t load_last() const;
    void store_first(std::uint32_t first);

    Header* header_;
    const kvm_coalesced_mmio* entries_;
    std::uint32_t capacity_;
    std::mutex mutex_;
    std::atomic<std::uint64_t> drains_{0};
};

}  // namespace xover::kvm
