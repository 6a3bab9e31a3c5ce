// The TX handoff: frames a sender's process prepared for a crossover peer
// whose RX ring was full, parked in the sender's shared memory so that the
// receiver's process moves them itself when its guest returns buffers.
//
// Why: a receiver slower than its sender keeps its ring full. Without the
// handoff the sender waits for the receiver's doorbell and its I/O thread
// is woken once per batch, on a host where every core runs a polling vCPU
// (tens of µs each). With it the receiver's process, already in userspace
// for its guest's RDT write or RX notify, copies the parked frames into
// its ring, completes them in the sender's TX ring through the sender
// model's TX view (tx_view.hpp), and raises the sender's TX interrupt. No
// thread of the sender wakes; the sender's guest sees its TX ring drain at
// the receiver's pace (the ring itself is the back-pressure, as on a wire).
//
// Layout: one TxHandoff per NIC, in the NIC's shared memfd right after its
// state page (shared_nic_state.hpp: kSharedStateSize covers both).
//
// Ownership and ordering (S = the sender's process, C = a consumer: the
// receiver's process, or S itself when it is awake anyway):
//   run        link id the parked frames are for; 0: no run. S starts a
//              run (the first frame it parks) and ends it (once the queue
//              is empty), both holding `lock`. While a run is active S
//              completes no TX work itself: every frame for that peer is
//              parked in order, anything else waits (`backlog`), so TX
//              completions have one writer at a time.
//   tail       records parked, written only by S (release after the slot).
//   head       records consumed, written only by C holding `lock`
//              (release after the completion is written).
//   lock       one consumer at a time, and S's run start/end. Always taken
//              after the receiver's producer lock, never before it.
//   queue      the sender's TX queue description (its model's view reads
//              it to complete tokens); written by S with no lock, inside a
//              seqcount (publish_tx_queue; S never waits for a consumer),
//              read by C under `lock` (read_tx_queue). A consumer's batch
//              in flight finishes with the description it read, as DMA in
//              flight does. Its generation moves when the guest resets or
//              moves the ring; each record carries the generation it was
//              parked under, and C completes a token only in a ring of
//              the same one (so S never waits for C to drop them).
//   completion_pos  virtio-net: the TX used index. S stores it while no
//              run is active; C advances it; S takes it back at run end.
//   backlog    S has a frame it could not park (another destination, the
//              queue full): a consumer that empties the queue rings S's
//              doorbell.
//   tx_irq_owner  C completed work whose TX interrupt only S may raise
//              (e1000 within its ITR interval; virtio-net: S's TX vector):
//              C sets it (exchange) and rings S's doorbell on 0 -> 1.
// Every field a consumer reads is hostile input: it bounds `tail - head`,
// record lengths and tokens, and copies a frame out of its slot before
// looking at it (the sender could rewrite the slot meanwhile).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "xover/nic/flag_bits.hpp"
#include "xover/nic/owned_lock.hpp"

namespace xover::nic {

inline constexpr std::uint32_t kHandoffSlots = 512;       // power of two
inline constexpr std::uint32_t kHandoffSlotBytes = 2048;  // a full-size frame; larger ones are never parked

// What a model's TX view needs to complete tokens in the sender's ring.
enum class TxQueueKind : std::uint32_t { None = 0, E1000Legacy = 1, VirtioSplit = 2 };

// Bits of TxQueue::flags.
inline constexpr std::uint32_t kTxEventIdx = 1u << 0;      // virtio-net: VIRTIO_RING_F_EVENT_IDX
inline constexpr std::uint32_t kTxIrqThrottled = 1u << 1;  // e1000 ITR: edges at least irq_interval_ns apart
inline constexpr std::array<std::uint32_t, 2> kTxQueueFlags{kTxEventIdx, kTxIrqThrottled};
static_assert(distinct_bits(kTxQueueFlags));

// The description, as a value.
struct TxQueueDescription {
    TxQueueKind kind = TxQueueKind::None;
    std::uint32_t entries = 0;  // ring size
    std::uint64_t ring_gpa = 0, avail_gpa = 0, used_gpa = 0;  // e1000: TDBA; virtio: desc/avail/used
    std::uint32_t flags = 0;                                  // kTx* bits
    std::uint32_t irq_interval_ns = 0;                        // with kTxIrqThrottled
    // Moves on each TX ring reset or move (abandon_tx): a token parked under
    // another generation names a descriptor of a ring that is gone.
    std::uint32_t generation = 0;
};

struct TxQueue {
    std::atomic<std::uint32_t> kind{0};          // TxQueueKind
    std::atomic<std::uint32_t> entries{0};       // ring size
    std::atomic<std::uint64_t> ring_gpa{0};      // e1000: TDBA; virtio: descriptor table
    std::atomic<std::uint64_t> avail_gpa{0};     // virtio only
    std::atomic<std::uint64_t> used_gpa{0};      // virtio only
    std::atomic<std::uint32_t> flags{0};
    std::atomic<std::uint32_t> irq_interval_ns{0};  // with kTxIrqThrottled
    std::atomic<std::uint32_t> generation{0};
    std::atomic<std::uint32_t> seq{0};  // odd while the sender writes the fields
};

// The sender (one thread at a time, its device lock). The seqcount rule of
// shared_nic_state.hpp: seq odd, fields with release, seq even with release.
inline void publish_tx_queue(TxQueue& q, const TxQueueDescription& d) {
    constexpr auto rel = std::memory_order_release;
    std::uint32_t s = q.seq.load(std::memory_order_relaxed);
    q.seq.store(s + 1, std::memory_order_relaxed);
    q.kind.store(std::uint32_t(d.kind), rel);
    q.entries.store(d.entries, rel);
    q.ring_gpa.store(d.ring_gpa, rel);
    q.avail_gpa.store(d.avail_gpa, rel);
    q.used_gpa.store(d.used_gpa, rel);
    q.flags.store(d.flags, rel);
    q.irq_interval_ns.store(d.irq_interval_ns, rel);
    q.generation.store(d.generation, rel);
    q.seq.store(s + 2, rel);
}

// A consumer: one consistent description, or false when the sender kept it
// mid-update through a few tries (it was stopped there: its TX ring is
// being rewritten, so there is nothing to complete in it now).
inline bool read_tx_queue(const TxQueue& q, TxQueueDescription& out) {
    constexpr auto acq = std::memory_order_acquire;
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::uint32_t before = q.seq.load(acq);
        if (before & 1) continue;
        TxQueueDescription d;
        d.kind = TxQueueKind(q.kind.load(acq));
        d.entries = q.entries.load(acq);
        d.ring_gpa = q.ring_gpa.load(acq);
        d.avail_gpa = q.avail_gpa.load(acq);
        d.used_gpa = q.used_gpa.load(acq);
        d.flags = q.flags.load(acq);
        d.irq_interval_ns = q.irq_interval_ns.load(acq);
        d.generation = q.generation.load(acq);
        if (q.seq.load(std::memory_order_relaxed) != before) continue;
        out = d;
        return true;
    }
    return false;
}

// A record: the frame in slot (index % kHandoffSlots), and what completes
// it in the sender's ring.
struct HandoffRecord {
    std::atomic<std::uint32_t> length{0};  // frame bytes in the slot (0: completion only)
    std::atomic<std::uint32_t> token{0};   // model-defined (tx_view.hpp)
    std::atomic<std::uint32_t> flags{0};   // kRecordCompletes
    std::atomic<std::uint32_t> generation{0};  // the TX queue's when parked: the token's ring
};
inline constexpr std::uint32_t kRecordCompletes = 1u << 0;  // the token is to be completed
inline constexpr std::array<std::uint32_t, 1> kRecordFlags{kRecordCompletes};
static_assert(distinct_bits(kRecordFlags));

struct TxHandoff {
    alignas(64) std::atomic<std::uint32_t> tail{0};
    alignas(64) std::atomic<std::uint32_t> head{0};
    OwnedLock lock;  // owned_lock.hpp: a holder that died is recovered
    alignas(64) std::atomic<std::uint64_t> run{0};
    std::atomic<std::uint32_t> backlog{0};
    std::atomic<std::uint32_t> tx_irq_owner{0};
    std::atomic<std::uint32_t> completion_pos{0};
    // CLOCK_MONOTONIC ns of the owner's last interrupt edge (the owner and
    // movers store it when they raise one): a mover honours the owner's
    // throttle (kTxIrqThrottled) against it.
    std::atomic<std::uint64_t> last_irq_ns{0};
    TxQueue queue;
    // Statistics, for `--stats` on either side.
    alignas(64) std::atomic<std::uint64_t> moved_by_peer{0};  // records a peer's process consumed
    std::atomic<std::uint64_t> moved_by_owner{0};             // records the sender consumed itself
    alignas(64) HandoffRecord records[kHandoffSlots];
    alignas(64) std::uint8_t slots[kHandoffSlots][kHandoffSlotBytes];

    // --- the sender ---
    std::uint32_t parked() const {
        return tail.load(std::memory_order_relaxed) - head.load(std::memory_order_acquire);
    }
    bool full() const { return parked() >= kHandoffSlots; }
    // Copies `frame` (at most kHandoffSlotBytes) into the next slot and
    // publishes it; `token` is of TX queue generation `generation`. The
    // caller checked !full().
    void park(const std::uint8_t* frame, std::uint32_t length, std::uint32_t token, bool completes,
              std::uint32_t generation) {
        std::uint32_t t = tail.load(std::memory_order_relaxed);
        std::uint32_t i = t % kHandoffSlots;
        if (length) std::memcpy(slots[i], frame, length);
        records[i].length.store(length, std::memory_order_relaxed);
        records[i].token.store(token, std::memory_order_relaxed);
        records[i].flags.store(completes ? kRecordCompletes : 0, std::memory_order_relaxed);
        records[i].generation.store(generation, std::memory_order_relaxed);
        tail.store(t + 1, std::memory_order_release);
    }

    // --- locking (consumers, and the sender's run start/end) ---
    bool try_lock() { return lock.try_lock(); }
    // One short spin (no yield), for a caller with another way to get the
    // work done: the holder is in the middle of a batch.
    bool try_lock_briefly() { return lock.try_lock_briefly(); }
    void unlock() { lock.unlock(); }
};

static_assert(std::is_standard_layout_v<TxHandoff>);

// A consumer's view of one parked record, read once, bounded.
struct ParkedFrame {
    const std::uint8_t* bytes = nullptr;  // in the slot: copy before use
    std::uint32_t length = 0;
    std::uint32_t token = 0;
    std::uint32_t generation = 0;  // complete the token only in a ring of this generation
    bool completes = false;
};

// Consumer, holding the lock: the oldest record, or false when there is
// none or the sender's indices are impossible (a hostile or broken page:
// nothing is consumed).
inline bool peek_parked(const TxHandoff& h, ParkedFrame& out) {
    std::uint32_t head = h.head.load(std::memory_order_relaxed);
    std::uint32_t tail = h.tail.load(std::memory_order_acquire);
    if (head == tail || tail - head > kHandoffSlots) return false;
    const HandoffRecord& r = h.records[head % kHandoffSlots];
    std::uint32_t length = r.length.load(std::memory_order_relaxed);
    if (length > kHandoffSlotBytes) length = 0;  // a lie: complete it, deliver nothing
    out.bytes = h.slots[head % kHandoffSlots];
    out.length = length;
    out.token = r.token.load(std::memory_order_relaxed);
    out.completes = r.flags.load(std::memory_order_relaxed) & kRecordCompletes;
    out.generation = r.generation.load(std::memory_order_relaxed);
    return true;
}

// Consumer, holding the lock, after the record's frame was delivered (or
// dropped) and its completion written.
inline void pop_parked(TxHandoff& h) {
    h.head.store(h.head.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

}  // namespace xover::nic
