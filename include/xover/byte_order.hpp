// Fixed-width fields in bytes: big-endian (network order: frames, stream
// sockets) and little-endian (device descriptors in guest memory), read and
// written byte by byte, so neither alignment nor the host's byte order
// matters, and a hostile buffer is just bytes. The one definition for every
// module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

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

// Any width up to 8 bytes (a register access of 1, 2, 4 or 8 bytes).
inline std::uint64_t load_le(std::span<const std::uint8_t> data) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) v |= std::uint64_t(data[i]) << (8 * i);
    return v;
}
inline void store_le(std::span<std::uint8_t> data, std::uint64_t v) {
    for (std::size_t i = 0; i < data.size() && i < 8; ++i) data[i] = std::uint8_t(v >> (8 * i));
}
// A field of type T at `offset` of an image the caller checked is long
// enough (the loaders' headers).
template <typename T>
T load_le(std::span<const std::uint8_t> image, std::size_t offset) {
    T value{};
    for (std::size_t i = 0; i < sizeof(T); ++i) value |= T(T(image[offset + i]) << (8 * i));
    return value;
}

}  // namespace xover
