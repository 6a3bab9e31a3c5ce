#include "xover/net/internet_checksum.hpp"

namespace xover::net {

std::uint32_t add_checksum(std::span<const std::uint8_t> data, std::uint32_t sum) {
    // 64-bit accumulator: no fold needed inside the loop for any frame size.
    std::uint64_t acc = sum;
    std::size_t i = 0;
    for (; i + 1 < data.size(); i += 2) acc += std::uint32_t(data[i] << 8 | data[i + 1]);
    if (i < data.size()) acc += std::uint32_t(data[i] << 8);
    while (acc >> 32) acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
    return std::uint32_t(acc);
}

std::uint16_t fold_checksum(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return std::uint16_t(sum);
}

}  // namespace xover::net
