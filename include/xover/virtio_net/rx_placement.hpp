// Placing one received frame in a virtio-net RX queue: pop as many chains
// as the frame needs (one without MRG_RXBUF), write virtio_net_hdr_v1 and
// the frame, return the chains through the used ring. Shared by the device
// (frames from its backend) and the crossover (a peer writing straight into
// this queue from another process, over its mapping of our RAM).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xover/virtio_net/virtqueue.hpp"

namespace xover::virtio_net {

// Scratch space, reserved once so placing a frame never allocates.
class RxPlacer {
public:
    enum class Outcome {
        Delivered,  // written, used ring published (no interrupt sent)
        Oversize,   // cannot fit: dropped (chains consumed as the spec allows)
        Starved,    // not enough buffers: nothing consumed, try again later
        Broken,     // malformed ring (q.error() says why)
    };

    RxPlacer();
    // `header_size`: 12 (virtio_net_hdr_v1). Counts unusable (too small)
    // buffers in bad_buffers().
    Outcome place(Virtqueue& q, bool mergeable, std::span<const std::uint8_t> frame);
    std::uint64_t bad_buffers() const { return bad_buffers_; }

private:
    struct Held {
        std::uint16_t head;
        std::uint32_t written;
        bool carries_frame;  // false: unusable, returned with length 0
    };
    void finish(Virtqueue& q);

    DescriptorChain first_;  // first chain of the frame (holds the header)
    DescriptorChain next_;
    std::vector<Held> held_;
    std::uint64_t bad_buffers_ = 0;
};

}  // namespace xover::virtio_net
