#include "checksum.hpp"

#include <array>

namespace xover::e1000 {

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

namespace {
constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t n = 0; n < 256; ++n) {
        std::uint32_t c = n;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    return table;
}
constexpr auto kCrcTable = make_crc_table();
}  // namespace

std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::uint8_t> data) {
    for (std::uint8_t b : data) crc = kCrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
    return crc;
}

}  // namespace xover::e1000
