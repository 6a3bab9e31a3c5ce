#include "xover/virtio_net/rx_placement.hpp"

#include <algorithm>
#include <cstring>

#include "xover/virtio_net/virtio_spec.hpp"

namespace xover::virtio_net {

namespace {

constexpr std::size_t kHeaderSize = sizeof(spec::net::Header);

// Writes src into the chain's device-writable bytes from `skip` on.
// Returns how many bytes fitted.
std::size_t scatter(const DescriptorChain& chain, std::size_t skip, std::span<const std::uint8_t> src) {
    std::size_t done = 0;
    for (const BufferSegment& s : chain.segments()) {
        if (!s.device_writable) continue;
        if (done == src.size()) break;
        if (skip >= s.bytes.size()) {
            skip -= s.bytes.size();
            continue;
        }
        std::size_t n = std::min(s.bytes.size() - skip, src.size() - done);
        std::memcpy(s.bytes.data() + skip, src.data() + done, n);
        done += n;
        skip = 0;
    }
    return done;
}

}  // namespace

RxPlacer::RxPlacer() { held_.reserve(Virtqueue::kMaxSize); }

RxPlacer::Outcome RxPlacer::place(Virtqueue& q, bool merge, std::span<const std::uint8_t> frame) {
    held_.clear();
    std::size_t placed = 0;     // frame bytes written so far
    std::uint16_t buffers = 0;  // chains holding part of this frame
    auto give_back = [&] { q.unpop(std::uint16_t(held_.size())); };

    for (;;) {
        // Never hold more chains than the ring has: a frame that cannot fit
        // even in a full ring is dropped instead of waiting forever.
        if (held_.size() >= q.layout().size) {
            give_back();
            return Outcome::Oversize;
        }
        DescriptorChain& chain = buffers == 0 ? first_ : next_;
        auto st = q.pop(chain);
        if (st == Virtqueue::PopStatus::Empty) {
            give_back();
            return Outcome::Starved;
        }
        if (st == Virtqueue::PopStatus::Broken) return Outcome::Broken;
        std::size_t skip = buffers == 0 ? kHeaderSize : 0;
        if (chain.writable_bytes() == 0 || chain.writable_bytes() < skip) {
            // No room for anything (or not even for the header): a driver
            // bug. Return the chain unused.
            ++bad_buffers_;
            held_.push_back(Held{chain.head(), 0, false});
            continue;
        }
        std::size_t n = scatter(chain, skip, frame.subspan(placed));
        if (!merge && placed + n < frame.size()) {
            // Without mergeable buffers a frame must fit one chain; this
            // one is too small for this frame (maybe not for the next).
            q.unpop();
            finish(q);
            return Outcome::Oversize;
        }
        placed += n;
        ++buffers;
        held_.push_back(Held{chain.head(), std::uint32_t(skip + n), true});
        if (placed == frame.size()) break;
    }

    spec::net::Header hdr{};
    hdr.gso_type = spec::net::kGsoNone;
    hdr.num_buffers = merge ? buffers : 1;
    scatter(first_, 0, std::span(reinterpret_cast<const std::uint8_t*>(&hdr), sizeof hdr));
    finish(q);
    return Outcome::Delivered;
}

void RxPlacer::finish(Virtqueue& q) {
    // Frame buffers first (in order, as num_buffers requires), then any
    // unusable chains we consumed on the way.
    for (const Held& h : held_)
        if (h.carries_frame) q.add_used(h.head, h.written);
    for (const Held& h : held_)
        if (!h.carries_frame) q.add_used(h.head, 0);
    if (!held_.empty()) q.publish_used();
}

}  // namespace xover::virtio_net
