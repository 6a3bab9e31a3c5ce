#include "xover/nic/shared_nic_state.hpp"

namespace xover::nic {

namespace {

// Holding the producer lock.
void apply(SharedNicState& s, const RxChange& change) {
    if (change.ring) s.publish_rx_ring(*change.ring);
    if (change.rdh) s.publish_rdh(*change.rdh);
    if (change.enabled) {
        if (*change.enabled)
            s.link_flags.fetch_or(kOwnerRxEnabled, std::memory_order_release);
        else
            s.link_flags.fetch_and(~std::uint32_t(kOwnerRxEnabled), std::memory_order_release);
    }
}

}  // namespace

void SharedNicState::apply_posted_rx_change() {
    if (!rx_change_posted()) return;  // the usual case: one load
    RxChange change;
    if (rx_change.take(change)) apply(*this, change);
}

bool SharedNicState::change_rx(const RxChange& change) {
    if (producer_lock.try_lock_briefly()) {
        apply_posted_rx_change();  // an older change first
        apply(*this, change);
        unlock_producer();
        return true;
    }
    rx_change.post(change);
    // The holder may have released the lock between our spin and the
    // post, past its last look: one more try costs one atomic.
    if (!producer_lock.try_lock()) return !rx_change_posted();
    unlock_producer();  // applies it
    return true;
}

bool SharedNicState::settle_rx_change() {
    if (!rx_change_posted()) return true;
    if (!producer_lock.try_lock_briefly()) return false;
    unlock_producer();  // applies it
    return true;
}

void SharedNicState::initialize(std::uint32_t model_id) {
    constexpr auto relaxed = std::memory_order_relaxed;
    rdh.store(0, relaxed);
    rdt.store(0, relaxed);
    icr.store(0, relaxed);
    ims.store(0, relaxed);
    link_flags.store(0, relaxed);
    producer_lock.clear();
    (void)own_lock_token();  // drawn now, at set-up, not first under the sandbox
    producer_waiting.store(0, relaxed);
    rx_irq_deferred.store(0, relaxed);
    publish_rx_ring(RxRing{});
    rx_change.clear();
    owner.tx_frames.store(0, relaxed);
    owner.tx_bytes.store(0, relaxed);
    owner.tx_fallback.store(0, relaxed);
    for (auto& slot : slots) {
        slot.frames.store(0, relaxed);
        slot.bytes.store(0, relaxed);
        slot.dropped.store(0, relaxed);
        slot.copies.store(0, relaxed);
        slot.filtered.store(0, relaxed);
    }
    slow_arrivals.clear();
    // The part of the owner's model (an unknown model gets none).
    switch (ModelId(model_id)) {
    case ModelId::E1000: e1000.clear(); break;
    case ModelId::VirtioNet: virtio_net.clear(); break;
    }
    model.store(model_id, relaxed);
    version.store(kSharedStateVersion, relaxed);
    magic.store(kSharedStateMagic, std::memory_order_release);  // last: marks the page valid
}

}  // namespace xover::nic
