#include "xover/nic/shared_nic_state.hpp"

namespace xover::nic {

void SharedNicState::initialize(std::uint32_t model_id) {
    constexpr auto relaxed = std::memory_order_relaxed;
    rdh.store(0, relaxed);
    rdt.store(0, relaxed);
    icr.store(0, relaxed);
    ims.store(0, relaxed);
    link_flags.store(0, relaxed);
    producer_lock.clear();
    producer_waiting.store(0, relaxed);
    rx_irq_deferred.store(0, relaxed);
    publish_rx_ring(RxRing{});
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
