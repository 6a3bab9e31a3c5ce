#include "xover/nic/rx_change.hpp"

namespace xover::nic {

namespace {

constexpr std::uint64_t kSeqOne = std::uint64_t(1) << 32;

}  // namespace

// The first step makes the count odd with a CAS, because a holder may be
// taking the posted bits at that moment; while it is odd no holder writes
// `state` (holders only CAS from an even value), so the rest are stores.
// Field stores are release and the holder's loads acquire: a holder that
// sees any new field value also sees the odd count before it, and so fails
// its second check (the seqcount rule of shared_nic_state.hpp).
void PendingRxChange::post(const RxChange& change) {
    constexpr auto rel = std::memory_order_release;
    std::uint64_t s = state.load(std::memory_order_relaxed);
    while (!state.compare_exchange_weak(s, s + kSeqOne, std::memory_order_acq_rel, std::memory_order_relaxed)) {
    }
    std::uint32_t bits = posted_bits(s);  // what no holder took stays posted
    if (change.ring) {
        kind.store(std::uint32_t(change.ring->kind), rel);
        ring_entries.store(change.ring->ring_entries, rel);
        buffer_size.store(change.ring->buffer_size, rel);
        features.store(change.ring->features, rel);
        ring_gpa.store(change.ring->ring_gpa, rel);
        avail_gpa.store(change.ring->avail_gpa, rel);
        used_gpa.store(change.ring->used_gpa, rel);
        bits |= kRing;
    }
    if (change.rdh) {
        rdh.store(*change.rdh, rel);
        bits |= kRdh;
    }
    if (change.enabled) {
        enabled.store(*change.enabled ? 1 : 0, rel);
        bits |= kEnabled;
    }
    std::uint64_t seq = (s >> 32) + 2;
    state.store((seq << 32) | bits, rel);
}

bool PendingRxChange::take(RxChange& out) {
    constexpr auto acq = std::memory_order_acquire;
    std::uint64_t before = state.load(acq);
    std::uint32_t bits = posted_bits(before);
    if (bits == 0 || owner_writing(before)) return false;
    RxChange c;
    if (bits & kRing) {
        RxRing r;
        r.kind = RxRingKind(kind.load(acq));
        r.ring_entries = ring_entries.load(acq);
        r.buffer_size = buffer_size.load(acq);
        r.features = features.load(acq);
        r.ring_gpa = ring_gpa.load(acq);
        r.avail_gpa = avail_gpa.load(acq);
        r.used_gpa = used_gpa.load(acq);
        c.ring = r;
    }
    if (bits & kRdh) c.rdh = rdh.load(acq);
    if (bits & kEnabled) c.enabled = enabled.load(acq) != 0;
    // The same even count, nothing posted: claimed. Anything else (the
    // owner began a post meanwhile) leaves the change to a later take.
    std::uint64_t taken = before & ~std::uint64_t(0xffffffffu);
    if (!state.compare_exchange_strong(before, taken, std::memory_order_acq_rel, std::memory_order_relaxed))
        return false;
    out = c;
    return true;
}

std::optional<std::uint32_t> PendingRxChange::posted_rdh() const {
    if (!(posted_bits(state.load(std::memory_order_acquire)) & kRdh)) return std::nullopt;
    return rdh.load(std::memory_order_acquire);  // the owner's own value: it is the only writer
}

void PendingRxChange::clear() {
    constexpr auto relaxed = std::memory_order_relaxed;
    state.store(0, relaxed);
    kind.store(0, relaxed);
    ring_entries.store(0, relaxed);
    buffer_size.store(0, relaxed);
    features.store(0, relaxed);
    ring_gpa.store(0, relaxed);
    avail_gpa.store(0, relaxed);
    used_gpa.store(0, relaxed);
    rdh.store(0, relaxed);
    enabled.store(0, relaxed);
}

}  // namespace xover::nic
