// VIRTIO_NET_HDR_F_NEEDS_CSUM: the driver leaves the pseudo-header sum in
// the checksum field and asks the device to fold in everything from
// csum_start to the end of the frame (the sum is net's,
// xover/net/internet_checksum.hpp).
#pragma once

#include <cstdint>
#include <span>

namespace xover::virtio_net {

// Completes the checksum at csum_start + csum_offset in place. Returns
// false (frame untouched) when the field does not fit inside the frame.
bool complete_checksum(std::span<std::uint8_t> frame, std::uint16_t csum_start, std::uint16_t csum_offset);


}  // namespace xover::virtio_net
