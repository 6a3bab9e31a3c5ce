// PeerRxWriter for a virtio-net peer: the peer's RX split queue, walked
// with the same Virtqueue/RxPlacer code the peer's own device uses, over
// our mapping of its RAM. The device-side position (next avail == used
// idx) lives in the peer's shared page (rdh), so whoever produces next —
// this sender, another peer, the owner's backend — continues from it.
#include "xover/crossover/peer_rx_writer.hpp"
#include "xover/virtio_net/rx_placement.hpp"
#include "xover/virtio_net/virtqueue.hpp"

namespace xover::crossover {

namespace {

class VirtioRxWriter final : public PeerRxWriter {
public:
    Begin begin(vmm::GuestMemory& memory, SharedNicState& state) override {
        state_ = &state;
        wrote_ = false;
        SharedNicState::RxRing ring;
        if (!state.read_rx_ring(ring)) return Begin::NotReady;
        if (!(state.link_flags.load(std::memory_order_acquire) & kOwnerRxEnabled)) return Begin::NotReady;
        if (ring.kind != RxRingKind::VirtioSplit) return Begin::NotReady;
        virtio_net::VirtqueueLayout layout;
        layout.size = std::uint16_t(ring.ring_entries);
        layout.desc = ring.ring_gpa;
        layout.avail = ring.avail_gpa;
        layout.used = ring.used_gpa;
        if (ring.ring_entries > virtio_net::Virtqueue::kMaxSize ||
            !queue_.enable(memory, layout, ring.features & kRxEventIdx, ring.features & kRxIndirect))
            return Begin::Broken;
        mergeable_ = ring.features & kRxMergeable;
        queue_.resume_at(std::uint16_t(state.load_rdh()));
        return Begin::Ready;
    }

    Status write(std::span<const std::uint8_t> frame) override {
        switch (placer_.place(queue_, mergeable_, frame)) {
        case virtio_net::RxPlacer::Outcome::Delivered: wrote_ = true; return Status::Written;
        case virtio_net::RxPlacer::Outcome::Oversize: wrote_ = true; return Status::Oversize;
        case virtio_net::RxPlacer::Outcome::Starved: return Status::Full;
        case virtio_net::RxPlacer::Outcome::Broken: return Status::Bad;
        }
        return Status::Bad;
    }

    bool arm_space_notification() override { return queue_.enable_notifications(); }

    Notify finish() override {
        state_->publish_rdh(queue_.next_avail());
        // The ring decides (event idx / NO_INTERRUPT); how the interrupt
        // reaches the guest (its MSI-X masking, INTx) is the owner's
        // route, applied by CrossoverPort::end_batch() outside the lock.
        bool interrupt = wrote_ && queue_.should_interrupt();
        queue_.disable();
        return interrupt ? Notify::Interrupt : Notify::None;
    }

private:
    SharedNicState* state_ = nullptr;
    virtio_net::Virtqueue queue_;
    virtio_net::RxPlacer placer_;
    bool mergeable_ = false;
    bool wrote_ = false;
};

}  // namespace

std::unique_ptr<PeerRxWriter> make_e1000_rx_writer();

std::unique_ptr<PeerRxWriter> make_virtio_rx_writer() { return std::make_unique<VirtioRxWriter>(); }

std::unique_ptr<PeerRxWriter> make_peer_rx_writer(std::string_view peer_model) {
    if (peer_model == "e1000") return make_e1000_rx_writer();
    if (peer_model == "virtio-net") return make_virtio_rx_writer();
    return nullptr;
}

}  // namespace xover::crossover
