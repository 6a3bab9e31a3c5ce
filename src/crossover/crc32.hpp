// CRC-32 (IEEE 802.3, reflected, as the Ethernet FCS) for frames a peer
// e1000 expects with their FCS (RCTL.SECRC clear).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace xover::crossover {

inline constexpr std::array<std::uint32_t, 256> kCrc32Table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}();

inline std::uint32_t crc32(std::span<const std::uint8_t> data) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::uint8_t b : data) c = kCrc32Table[(c ^ b) & 0xFF] ^ (c >> 8);
    return ~c;
}

}  // namespace xover::crossover
