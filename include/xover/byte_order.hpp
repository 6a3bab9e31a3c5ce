// Fixed-width fields in bytes: big-endian (network order: frames, stream
// sockets) and little-endian (device descriptors in guest memory), read and
// written byte by byte, so neither alignment nor the host's byte order
// matters, and a hostile buffer is just bytes. The one definition for every
// module (vmm::load_le/store_le serve register accesses of any width).
#pragma once

#include <cstdint>

namespace xover {

inline std::uint16_t load_be16(const std::uint8_t* p) { return std::uint16_t(p[0] << 8 | p[1]); }
inline std::uint32_t load_be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
inline std::uint16_t load_le16(const std::uint8_t* p) { return std::uint16_t(p[0] | p[1] << 8); }
inline std::uint32_t load_le32(const std::uint8_t* p) {
    return p[0] | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
inline std::uint64_t load_le64(const std::uint8_t* p) { return load_le32(p) | std::uint64_t(load_le32(p + 4)) << 32; }
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

}  // namespace xover
