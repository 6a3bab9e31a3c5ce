// Test doubles for the crossover seam: a NicPort that copies nothing
// anywhere (window tests override the window calls), and the owner's side
// of a virtio-net RX queue as a crossover producer finds it.
#pragma once

#include <string>

#include "virtqueue_builder.hpp"
#include "xover/nic/nic_port.hpp"
#include "xover/nic/tx_handoff.hpp"
#include "xover/crossover/shared_memory.hpp"

namespace xover::test {

// Counts frames that took the normal path (`copied`); no links, no peers.
struct FakeNicPort : nic::NicPort {
    explicit FakeNicPort(const std::string& name, std::uint32_t model_id)
        : page(crossover::SharedStatePage::create(name, model_id)) {}

    crossover::SharedStatePage page;
    int copied = 0;

    nic::SharedNicState& shared() override { return page.state(); }
    // As the real port: where a TX view finds the model's TX queue (no
    // ring resets here: generation 0).
    void publish_tx_queue(nic::TxQueueKind kind, std::uint32_t entries, std::uint64_t ring, std::uint64_t avail,
                          std::uint64_t used, std::uint32_t flags, std::uint32_t irq_interval_ns) override {
        nic::TxQueueDescription q{kind, entries, ring, avail, used, flags, irq_interval_ns, 0};
        nic::publish_tx_queue(nic::tx_handoff(page.state()).queue, q);
    }
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
