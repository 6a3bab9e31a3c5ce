// The Ethernet CRC-32, for the FCS the NIC hands a driver that does not
// strip it; the Internet checksum for its offloads is net's
// (xover/net/internet_checksum.hpp).
#pragma once

#include <cstdint>
#include <span>

#include "xover/byte_order.hpp"
#include "xover/net/internet_checksum.hpp"

namespace xover::e1000 {

// Ethernet FCS (CRC-32, reflected, init and final xor 0xFFFFFFFF), chained
// over several pieces by passing the previous result back in.
std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::uint8_t> data);
inline constexpr std::uint32_t kCrc32Init = 0xFFFFFFFFu;
inline std::uint32_t crc32_final(std::uint32_t crc) { return ~crc; }

// The shared Internet checksum, by its short names in this model's code
// (byte order: xover/byte_order.hpp).
using net::add_checksum;
using net::fold_checksum;

}  // namespace xover::e1000
