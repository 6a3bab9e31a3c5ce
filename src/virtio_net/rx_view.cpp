// The virtio-net RX view (nic/rx_view.hpp): the receiver's RX split queue,
// walked with the same Virtqueue/RxPlacer code the receiver's own device
// uses, over the caller's mapping of its RAM. The device-side position
// (next avail == used idx) lives in the receiver's shared page (rdh), so
// whoever produces next — a sender, another peer, the owner's backend —
// continues from it.
#include <cstring>

#include "xover/nic/rx_view.hpp"
#include "xover/virtio_net/rx_placement.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/virtio_net/virtqueue.hpp"

namespace xover::virtio_net {

namespace {

constexpr std::uint32_t kHeader = sizeof(spec::net::Header);  // virtio_net_hdr_v1

class VirtioRxView final : public nic::RxView {
public:
    Begin begin(vmm::GuestMemory& memory, nic::SharedNicState& state) override {
        state_ = &state;
        wrote_ = false;
        nic::SharedNicState::RxRing ring;
        if (!state.read_rx_ring(ring)) return Begin::NotReady;
        if (!(state.link_flags.load(std::memory_order_acquire) & nic::kOwnerRxEnabled)) return Begin::NotReady;
        if (ring.kind != nic::RxRingKind::VirtioSplit) return Begin::NotReady;
        VirtqueueLayout layout;
        layout.size = std::uint16_t(ring.ring_entries);
        layout.desc = ring.ring_gpa;
        layout.avail = ring.avail_gpa;
        layout.used = ring.used_gpa;
        if (ring.ring_entries > Virtqueue::kMaxSize ||
            !queue_.enable(memory, layout, ring.features & nic::kRxEventIdx, ring.features & nic::kRxIndirect))
            return Begin::Broken;
        mergeable_ = ring.features & nic::kRxMergeable;
        queue_.resume_at(queue_.visible_position(std::uint16_t(state.load_rdh())));
        return Begin::Ready;
    }

    Status write(std::span<const std::uint8_t> frame) override {
        switch (placer_.place(queue_, mergeable_, frame)) {
        case RxPlacer::Outcome::Delivered: wrote_ = true; return Status::Written;
        case RxPlacer::Outcome::Oversize: wrote_ = true; return Status::Oversize;
        case RxPlacer::Outcome::Starved: return Status::Full;
        case RxPlacer::Outcome::Broken: return Status::Bad;
        }
        return Status::Bad;
    }

    bool arm_space_notification() override { return queue_.enable_notifications(); }

    // Window mode: the next available chain must be head `index`, one
    // device-writable buffer at `buffer_gpa` with room for the header and
    // the frame, which is already there. Only the header and the used
    // entry are written.
    Status place(std::uint32_t index, std::uint64_t buffer_gpa, std::uint32_t length) override {
        switch (queue_.pop(window_chain_)) {
        case Virtqueue::PopStatus::Empty: return Status::Full;
        case Virtqueue::PopStatus::Broken: return Status::Bad;
        case Virtqueue::PopStatus::Chain: break;
        }
        auto segments = window_chain_.segments();
        bool in_place = window_chain_.head() == index && segments.size() == 1 && segments[0].device_writable &&
                        segments[0].gpa == buffer_gpa && segments[0].bytes.size() >= kHeader + std::size_t(length);
        if (!in_place) {
            queue_.unpop();  // the copy path takes this chain instead
            return Status::Bad;
        }
        spec::net::Header hdr{};
        hdr.gso_type = spec::net::kGsoNone;
        hdr.num_buffers = 1;
        std::memcpy(segments[0].bytes.data(), &hdr, kHeader);
        queue_.add_used(window_chain_.head(), std::uint32_t(kHeader + length));
        queue_.publish_used();
        wrote_ = true;
        return Status::Written;
    }
    std::uint32_t window_frame_offset() const override { return kHeader; }
    std::uint32_t position() const override { return queue_.next_avail(); }
    // The owner publishes whether its RX vector may be written from here
    // (masked: left pending; not ours: its doorbell).
    nic::PeerInterrupt* rx_route(nic::SharedNicState& state) override { return &state.virtio_net.peer_irq; }

    Notify finish() override {
        state_->publish_rdh(queue_.next_avail());
        // The ring decides (event idx / NO_INTERRUPT); how the interrupt
        // reaches the guest (its MSI-X masking, INTx) is the owner's
        // route (nic/peer_interrupt.hpp), which the caller applies
        // outside the lock.
        bool interrupt = wrote_ && queue_.should_interrupt();
        queue_.disable();
        return interrupt ? Notify::Interrupt : Notify::None;
    }

private:
    nic::SharedNicState* state_ = nullptr;
    Virtqueue queue_;
    RxPlacer placer_;
    DescriptorChain window_chain_;
    bool mergeable_ = false;
    bool wrote_ = false;
};

}  // namespace

std::unique_ptr<nic::RxView> make_rx_view() { return std::make_unique<VirtioRxView>(); }

}  // namespace xover::virtio_net
