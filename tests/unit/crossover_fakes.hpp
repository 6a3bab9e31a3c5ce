// Test doubles for the crossover seam: a NicPort that copies nothing
// anywhere (window tests override the window calls), and the owner's side
// of a virtio-net RX queue as a crossover producer finds it.
#pragma once

#include <string>

#include "virtqueue_builder.hpp"
#include "xover/nic/nic_port.hpp"
#include "xover/crossover/shared_memory.hpp"

namespace xover::test {

// Counts frames that took the normal path (`copied`); no links, no peers.
struct FakeNicPort : nic::NicPort {
    explicit FakeNicPort(const std::string& name, std::uint32_t model_id)
        : page(crossover::SharedStatePage::create(name, model_id)) {}

    crossover::SharedStatePage page;
    int copied = 0;

    nic::SharedNicState& shared() override { return page.state(); }
    net::Backend::SendResult send(std::span<const std::uint8_t>) override {
        ++copied;
        return net::Backend::SendResult::Sent;
    }
    void end_batch() override {}
    OwnRx rx_space_returned() override { return OwnRx::None; }
    bool carrier() const override { return true; }
    void append_counters(net::Counters&) const override {}
};

// What a virtio-net owner publishes for its RX queue `vq` (driver side in
// fake memory): the ring, its features, "receive enabled".
inline void publish_virtio_rx(nic::SharedNicState& state, const VirtqueueBuilder& vq, std::uint32_t features) {
    nic::SharedNicState::RxRing ring;
    ring.kind = nic::RxRingKind::VirtioSplit;
    ring.ring_gpa = vq.layout().desc;
    ring.avail_gpa = vq.layout().avail;
    ring.used_gpa = vq.layout().used;
    ring.ring_entries = vq.size();
    ring.features = features;
    state.publish_rx_ring(ring);
    state.link_flags.fetch_or(nic::kOwnerRxEnabled);
}

}  // namespace xover::test
