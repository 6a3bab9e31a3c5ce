// An address space (port I/O or MMIO) as an ordered map of non-overlapping
// ranges, each routed to an IoDevice. vCPU threads dispatch concurrently;
// mapping changes (a guest moving a PCI BAR) may happen from inside a
// dispatch, so the lock is held only to find the device, never while it runs.
// Device objects must outlive their mappings.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "xover/vmm/io_device.hpp"

namespace xover::vmm {

class IoBus {
public:
    struct DeviceCounters {
        std::string name;
        std::atomic<std::uint64_t> reads{0};
        std::atomic<std::uint64_t> writes{0};
    };

    explicit IoBus(std::string name) : name_(std::move(name)) {}
    IoBus(const IoBus&) = delete;
    IoBus& operator=(const IoBus&) = delete;

    const std::string& name() const { return name_; }

    // Maps [base, base + size) to `device`; accesses are counted under
    // `name` (several ranges may share a name). Throws xover::Error if the
    // range is empty, wraps, or overlaps an existing one.
    void insert(std::uint64_t base, std::uint64_t size, IoDevice& device, const std::string& name);
    // Same, but returns false instead of throwing (guest-driven remaps).
    bool try_insert(std::uint64_t base, std::uint64_t size, IoDevice& device, const std::string& name) noexcept;
    // Removes the range starting exactly at `base`; false if there is none.
    bool remove(std::uint64_t base) noexcept;

    // Dispatch. An access no device claims reads as all-ones, is ignored
    // when written, counted and logged once per address; returns false then.
    bool read(std::uint64_t address, std::span<std::uint8_t> data) noexcept;
    bool write(std::uint64_t address, std::span<const std::uint8_t> data) noexcept;

    std::uint64_t unclaimed_accesses() const { return unclaimed_.load(std::memory_order_relaxed); }
    // Per-device counters in name order (stable for the bus's lifetime).
    std::vector<const DeviceCounters*> counters() const;

private:
    struct Range {
        std::uint64_t size;
        IoDevice* device;
        DeviceCounters* counters;
    };
    // Finds the device covering `address`; fills the offset.
    bool lookup(std::uint64_t address, Range& range, std::uint64_t& offset) const;
    DeviceCounters* counters_for_locked(const std::string& name);
    void note_unclaimed(std::uint64_t address, std::size_t width, bool is_write) noexcept;

    std::string name_;
    mutable std::shared_mutex mutex_;
    std::map<std::uint64_t, Range> ranges_;
    std::map<std::string, std::unique_ptr<DeviceCounters>> counters_;
    std::atomic<std::uint64_t> unclaimed_{0};
    std::mutex logged_mutex_;
    std::set<std::uint64_t> logged_;
};

}  // namespace xover::vmm
