// Internet (ones' complement) checksums and the Ethernet CRC-32, the two
// sums the NIC computes for offloads and for the FCS it hands a driver
// that does not strip it.
#pragma once

#include <cstdint>
#include <span>

namespace xover::e1000 {

// Adds `data` as big-endian 16-bit words (an odd trailing byte is padded
// with zero) to `sum`. Deferred carries are folded by fold_checksum().
std::uint32_t add_checksum(std::span<const std::uint8_t> data, std::uint32_t sum = 0);
// Folds carries into 16 bits (not complemented).
std::uint16_t fold_checksum(std::uint32_t sum);

// Ethernet FCS (CRC-32, reflected, init and final xor 0xFFFFFFFF), chained
// over several pieces by passing the previous result back in.
std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::uint8_t> data);
inline constexpr std::uint32_t kCrc32Init = 0xFFFFFFFFu;
inline std::uint32_t crc32_final(std::uint32_t crc) { return ~crc; }

inline std::uint16_t load_be16(const std::uint8_t* p) { return std::uint16_t(p[0] << 8 | p[1]); }
inline std::uint32_t load_be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
inline void store_be16(std::uint8_t* p, std::uint16_t v) {
    p[0] = std::uint8_t(v >> 8);
    p[1] = std::uint8_t(v);
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) {
    p[0] = std::uint8_t(v >> 24);
    p[1] = std::uint8_t(v >> 16);
    p[2] = std::uint8_t(v >> 8);
    p[3] = std::uint8_t(v);
}

}  // namespace xover::e1000
