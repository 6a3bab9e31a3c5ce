// A device as the I/O bus sees it: reads and writes at an offset inside the
// range it was mapped at. Port I/O and MMIO use the same interface.
#pragma once

#include <cstdint>
#include <span>

#include "xover/byte_order.hpp"

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

// Little-endian helpers for register handlers (xover/byte_order.hpp).
using xover::load_le;
using xover::store_le;

}  // namespace xover::vmm
