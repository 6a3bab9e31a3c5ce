#include "xover/crossover/shared_nic_state.hpp"

namespace xover::crossover {

void SharedNicState::initialize(std::uint32_t model_id) {
    constexpr auto relaxed = std::memory_order_relaxed;
    rdh.store(0, relaxed);
    rdt.store(0, relaxed);
    icr.store(0, relaxed);
    ims.store(0, relaxed);
    link_flags.store(0, relaxed);
    producer_lock.store(0, relaxed);
    producer_waiting.store(0, relaxed);
    publish_rx_ring(RxRing{});
    owner.tx_frames.store(0, relaxed);
    owner.tx_bytes.store(0, relaxed);
    owner.tx_fallback.store(0, relaxed);
    for (auto& slot : slots) {
        slot.frames.store(0, relaxed);
        slot.bytes.store(0, relaxed);
        slot.dropped.store(0, relaxed);
        slot.copies.store(0, relaxed);
    }
    model.store(model_id, relaxed);
    version.store(kSharedStateVersion, relaxed);
    magic.store(kSharedStateMagic, std::memory_order_release);  // last: marks the page valid
}

// A seqcount without fences (fences are invisible to ThreadSanitizer):
// the writer makes seq odd, stores the fields with release, then makes seq
// even with release; the reader loads the fields with acquire. A reader
// that sees any new field value therefore also sees the odd seq store
// before it, so its second seq load differs from the first and it retries.
// On x86 these orderings cost nothing extra.
void SharedNicState::publish_rx_ring(const RxRing& ring) {
    constexpr auto rel = std::memory_order_release;
    std::uint32_t s = rx_config.seq.load(std::memory_order_relaxed);
    rx_config.seq.store(s + 1, std::memory_order_relaxed);
    rx_config.kind.store(static_cast<std::uint32_t>(ring.kind), rel);
    rx_config.ring_gpa.store(ring.ring_gpa, rel);
    rx_config.avail_gpa.store(ring.avail_gpa, rel);
    rx_config.used_gpa.store(ring.used_gpa, rel);
    rx_config.ring_entries.store(ring.ring_entries, rel);
    rx_config.buffer_size.store(ring.buffer_size, rel);
    rx_config.features.store(ring.features, rel);
    rx_config.seq.store(s + 2, rel);
}

bool SharedNicState::read_rx_ring(RxRing& out) const {
    constexpr auto acq = std::memory_order_acquire;
    std::uint32_t before = rx_config.seq.load(acq);
    if (before & 1) return false;
    RxRing r;
    r.kind = static_cast<RxRingKind>(rx_config.kind.load(acq));
    r.ring_gpa = rx_config.ring_gpa.load(acq);
    r.avail_gpa = rx_config.avail_gpa.load(acq);
    r.used_gpa = rx_config.used_gpa.load(acq);
    r.ring_entries = rx_config.ring_entries.load(acq);
    r.buffer_size = rx_config.buffer_size.load(acq);
    r.features = rx_config.features.load(acq);
    if (rx_config.seq.load(std::memory_order_relaxed) != before) return false;
    out = r;
    return true;
}

}  // namespace xover::crossover
