#include "internet_checksum.hpp"

namespace xover::virtio_net {

std::uint16_t ones_complement_sum(std::span<const std::uint8_t> bytes, std::uint32_t initial) {
    std::uint64_t sum = initial;
    std::size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2) sum += std::uint32_t(bytes[i]) << 8 | bytes[i + 1];
    if (i < bytes.size()) sum += std::uint32_t(bytes[i]) << 8;  // odd byte, zero padded
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return std::uint16_t(sum);
}

bool complete_checksum(std::span<std::uint8_t> frame, std::uint16_t csum_start, std::uint16_t csum_offset) {
    std::size_t field = std::size_t(csum_start) + csum_offset;
    if (field + 2 > frame.size()) return false;
    std::uint16_t result = std::uint16_t(~ones_complement_sum(frame.subspan(csum_start)));
    // 0 and 0xffff are the same in ones' complement; UDP reserves 0 for
    // "no checksum", so send the other one.
    if (result == 0) result = 0xffff;
    frame[field] = std::uint8_t(result >> 8);
    frame[field + 1] = std::uint8_t(result);
    return true;
}

}  // namespace xover::virtio_net
