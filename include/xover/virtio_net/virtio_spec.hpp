// Constants from the virtio 1.2 specification that the split ring and the
// transport use. (linux/virtio_ring.h has the same values but does not
// compile as C++, so they are spelled out here.)
#pragma once

#include <cstdint>

namespace xover::virtio_net::spec {

// Descriptor flags (§2.7.5).
constexpr std::uint16_t kDescNext = 1;
constexpr std::uint16_t kDescWrite = 2;
constexpr std::uint16_t kDescIndirect = 4;

// Ring flags (§2.7.7, §2.7.10).
constexpr std::uint16_t kAvailNoInterrupt = 1;
constexpr std::uint16_t kUsedNoNotify = 1;

// Reserved feature bits (§6).
constexpr unsigned kFeatureIndirectDesc = 28;
constexpr unsigned kFeatureEventIdx = 29;
constexpr unsigned kFeatureVersion1 = 32;

// ISR status bits (§4.1.4.5).
constexpr std::uint8_t kIsrQueue = 1;
constexpr std::uint8_t kIsrConfig = 2;

}  // namespace xover::virtio_net::spec

namespace xover::virtio_net::spec::net {

// Feature bits (§5.1.3). (linux/virtio_net.h has a member named `class`
// and does not compile as C++.)
constexpr unsigned kFeatureCsum = 0;
constexpr unsigned kFeatureGuestCsum = 1;
constexpr unsigned kFeatureMac = 5;
constexpr unsigned kFeatureGuestTso4 = 7;
constexpr unsigned kFeatureHostTso4 = 11;
constexpr unsigned kFeatureMrgRxbuf = 15;
constexpr unsigned kFeatureStatus = 16;
constexpr unsigned kFeatureCtrlVq = 17;

constexpr std::uint16_t kStatusLinkUp = 1;

// struct virtio_net_hdr_v1 (§5.1.6), little-endian on the wire.
struct Header {
    std::uint8_t flags;
    std::uint8_t gso_type;
    std::uint16_t hdr_len;
    std::uint16_t gso_size;
    std::uint16_t csum_start;
    std::uint16_t csum_offset;
    std::uint16_t num_buffers;
};
static_assert(sizeof(Header) == 12);

constexpr std::uint8_t kHeaderNeedsCsum = 1;
constexpr std::uint8_t kHeaderDataValid = 2;
constexpr std::uint8_t kGsoNone = 0;

}  // namespace xover::virtio_net::spec::net
