#include "xover/virtio_net/msix_table.hpp"

#include <cstring>

namespace xover::virtio_net {

std::uint64_t MsixTable::Entry::address() const {
    std::uint64_t a;
    std::memcpy(&a, raw, 8);
    return a;
}

std::uint32_t MsixTable::Entry::data() const {
    std::uint32_t d;
    std::memcpy(&d, raw + 8, 4);
    return d;
}

MsixTable::MsixTable(unsigned vectors, vmm::MsiController& controller)
    : entries_(vectors), controller_(controller) {
    reset();
}

void MsixTable::reset() {
    for (auto& e : entries_) {
        e = Entry{};
        e.raw[12] = 1;  // masked after reset (PCI spec)
    }
    enabled_ = false;
    function_masked_ = false;
}

void MsixTable::table_read(std::uint64_t offset, std::span<std::uint8_t> data) const {
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint64_t at = offset + i;
        data[i] = at < table_bytes() ? entries_[at / kEntrySize].raw[at % kEntrySize] : 0;
    }
}

void MsixTable::table_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset >= table_bytes() || data.empty()) return;
    // Accesses are naturally aligned dwords or qwords, so at most one entry
    // (a qword never straddles two 16-byte entries when aligned).
    unsigned vector = unsigned(offset / kEntrySize);
    Entry& e = entries_[vector];
    bool was_masked = e.masked();
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint64_t at = offset + i;
        if (at / kEntrySize != vector) break;
        unsigned byte = unsigned(at % kEntrySize);
        // Vector control: only bit 0 (mask) is defined; the rest reads 0.
        if (byte >= 12) e.raw[byte] = byte == 12 ? (data[i] & 1) : 0;
        else e.raw[byte] = data[i];
    }
    if (!e.masked()) controller_.program(vector, e.address(), e.data());
    if (was_masked && !e.masked() && e.pending && deliverable(e)) {
        e.pending = false;
        controller_.fire(vector);
    }
}

void MsixTable::pba_read(std::uint64_t offset, std::span<std::uint8_t> data) const {
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint64_t at = offset + i;
        std::uint8_t byte = 0;
        if (at < pba_bytes())
            for (unsigned bit = 0; bit < 8; ++bit) {
                std::uint64_t v = at * 8 + bit;
                if (v < size() && entries_[v].pending) byte |= std::uint8_t(1u << bit);
            }
        data[i] = byte;
    }
}

void MsixTable::set_control(bool enabled, bool function_masked) {
    enabled_ = enabled;
    function_masked_ = function_masked;
    deliver_pending();
}

void MsixTable::deliver_pending() {
    for (unsigned v = 0; v < size(); ++v) {
        Entry& e = entries_[v];
        if (e.pending && deliverable(e)) {
            e.pending = false;
            controller_.fire(v);
        }
    }
}

bool MsixTable::signal(unsigned vector) {
    if (vector >= size()) return false;
    Entry& e = entries_[vector];
    if (!deliverable(e)) {
        e.pending = true;
        return false;
    }
    controller_.fire(vector);
    return true;
}

}  // namespace xover::virtio_net
