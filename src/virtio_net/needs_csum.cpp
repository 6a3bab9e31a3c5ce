#include "needs_csum.hpp"

#include "xover/net/internet_checksum.hpp"

namespace xover::virtio_net {

bool complete_checksum(std::span<std::uint8_t> frame, std::uint16_t csum_start, std::uint16_t csum_offset) {
    std::size_t field = std::size_t(csum_start) + csum_offset;
    if (field + 2 > frame.size()) return false;
    std::uint16_t result = std::uint16_t(~net::fold_checksum(net::add_checksum(frame.subspan(csum_start))));
    // 0 and 0xffff are the same in ones' complement; UDP reserves 0 for
    // "no checksum", so send the other one.
    if (result == 0) result = 0xffff;
    frame[field] = std::uint8_t(result >> 8);
    frame[field + 1] = std::uint8_t(result);
    return true;
}

}  // namespace xover::virtio_net
