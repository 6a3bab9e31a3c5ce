// The MSI-X table and pending-bit array of one PCI function (PCI Local Bus
// 3.0 §6.8.2): per-vector address/data/mask, the function-wide enable and
// mask bits from the capability, and pending bits for vectors signalled
// while masked, delivered when they are unmasked.
//
// Messages go out through vmm::MsiController: a vector is (re)programmed
// whenever the guest writes its entry while it is unmasked, or unmasks it.
// Not thread-safe: the owning device serialises calls with its lock.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xover/vmm/interrupts.hpp"

namespace xover::virtio_net {

class MsixTable {
public:
    static constexpr std::uint32_t kEntrySize = 16;

    MsixTable(unsigned vectors, vmm::MsiController& controller);

    unsigned size() const { return unsigned(entries_.size()); }
    std::uint32_t table_bytes() const { return size() * kEntrySize; }
    std::uint32_t pba_bytes() const { return ((size() + 63) / 64) * 8; }

    // Accesses relative to the start of the table / PBA. Out-of-range
    // accesses read 0 and are ignored. The PBA is read-only.
    void table_read(std::uint64_t offset, std::span<std::uint8_t> data) const;
    void table_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void pba_read(std::uint64_t offset, std::span<std::uint8_t> data) const;

    // From the capability's Message Control (MSI-X Enable, Function Mask).
    void set_control(bool enabled, bool function_masked);
    bool enabled() const { return enabled_; }
    bool function_masked() const { return function_masked_; }

    // Sends `vector`, or marks it pending while it (or the function) is
    // masked. Returns true if a message was sent. Out-of-range: nothing.
    bool signal(unsigned vector);
    bool pending(unsigned vector) const { return vector < size() && entries_[vector].pending; }
    bool masked(unsigned vector) const { return vector >= size() || entries_[vector].masked(); }

    // PCI reset (not virtio reset): all vectors masked, nothing pending.
    void reset();

private:
    struct Entry {
        std::uint8_t raw[kEntrySize]{};  // address lo/hi, data, vector control
        bool pending = false;
        bool masked() const { return raw[12] & 1; }
        std::uint64_t address() const;
        std::uint32_t data() const;
    };
    bool deliverable(const Entry& e) const { return enabled_ && !function_masked_ && !e.masked(); }
    void deliver_pending();

    std::vector<Entry> entries_;
    vmm::MsiController& controller_;
    bool enabled_ = false;
    bool function_masked_ = false;
};

}  // namespace xover::virtio_net
