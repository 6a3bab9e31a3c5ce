// A device as the I/O bus sees it: reads and writes at an offset inside the
// range it was mapped at. Port I/O and MMIO use the same interface.
#pragma once

#include <cstdint>
#include <span>

namespace xover::vmm {

class IoDevice {
public:
    virtual ~IoDevice() = default;
    // `offset` is relative to the start of the device's range; data.size()
    // is the access width (1, 2, 4 or 8). Unimplemented registers read as
    // the device chooses (usually 0) and ignore writes.
    virtual void read(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write(std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
};

// Little-endian helpers for register handlers.
inline std::uint64_t load_le(std::span<const std::uint8_t> data) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) v |= std::uint64_t(data[i]) << (8 * i);
    return v;
}
inline void store_le(std::span<std::uint8_t> data, std::uint64_t v) {
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) data[i] = std::uint8_t(v >> (8 * i));
}

}  // namespace xover::vmm
