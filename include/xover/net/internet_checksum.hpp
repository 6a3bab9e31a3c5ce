// The Internet checksum (RFC 1071): the ones'-complement sum of 16-bit
// big-endian words. The one implementation behind every offload: the
// e1000's TX checksum insertion and RX checksum check, and virtio-net's
// VIRTIO_NET_HDR_F_NEEDS_CSUM completion.
#pragma once

#include <cstdint>
#include <span>

namespace xover::net {

// Adds `data` as big-endian 16-bit words (an odd trailing byte is padded
// with zero) to `sum`. Carries are deferred: fold_checksum() folds them.
std::uint32_t add_checksum(std::span<const std::uint8_t> data, std::uint32_t sum = 0);
// Folds carries into 16 bits (not complemented).
std::uint16_t fold_checksum(std::uint32_t sum);

}  // namespace xover::net
