// The shared NIC state page: the receive-side registers and coordination
// words of one NIC that two processes touch — the NIC's owner (the VM
// whose guest drives the NIC) and the producers (crossover peers writing
// frames into this NIC's RX ring, plus the owner's own slow path). One
// page, backed by a memfd the owner creates and hands to the broker, which
// passes it to allowed peers; the NIC's TX handoff (tx_handoff.hpp)
// follows it in the same memfd.
//
// One versioned ABI (kSharedStateMagic, kSharedStateVersion; a peer whose
// page says otherwise is refused): a common part every model's views use,
// then the part of the owner's model (model_state.hpp) in a union, at a
// fixed offset. Every section's offset is pinned below (static_assert), so
// a layout change fails the build until the version is bumped with it.
// Every flag set of the ABI is checked for overlapping bits (flag_bits.hpp).
//
// Each field's owner (who writes; everyone else only reads) and ordering
// are given where it is declared. Every field is hostile input to the
// reader in the other process: it is bounded and read once before use.
//
// Interrupt rule (no lost interrupts, no syscall when masked): a producer
// does icr.fetch_or(cause) and then reads ims; if the cause is unmasked it
// writes the owner's irqfd. The owner, after writing ims, reads icr and
// raises its line itself if (icr & ims) != 0. Both pairs use seq_cst so at
// least one side sees the other's write (store-load ordering, as in
// Dekker's algorithm).
//
// Interrupt moderation (e1000 RDTR/RADV receive delay, ITR throttle) needs
// the owner's clock and timer, which producers do not have. While the
// owner's link_flags has kOwnerRxIrqModerated and RXT0 is unmasked, a
// producer that placed frames does not touch ICR or the irqfd: after
// publishing RDH it sets rx_irq_deferred (exchange, seq_cst) and, if it
// moved it from 0 to 1, rings the owner's doorbell (outside the lock). The
// owner, woken, exchanges it back to 0 and treats it as "frames arrived
// now": RXT0 after RDTR/RADV, the edge no sooner than ITR allows. A set
// flag means a doorbell is on its way, so one wake-up covers any number of
// batches; a producer that set it after the owner took it rings again.
// The owner flips the moderation flag when the guest writes RDTR or ITR; a
// batch that read the old value is delivered the old way (now, or via the
// owner), which is what a frame arriving during the register write could
// see on hardware too.
//
// Several producers (one-to-many, plus the owner's slow path) serialise on
// producer_lock, taken once per batch of frames, never held across a
// syscall. With a single producer it is uncontended: one atomic exchange
// per batch.
//
// Counters: each producer that has a link into this NIC counts into its own
// slot (the broker assigns slot numbers in LinkUp and reads the slots for
// `xover status`); the owner counts its own transmit side in `owner`.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "xover/nic/flag_bits.hpp"
#include "xover/nic/model_state.hpp"
#include "xover/nic/owned_lock.hpp"
#include "xover/nic/rx_change.hpp"
#include "xover/nic/slow_path_arrivals.hpp"
#include "xover/nic/tx_handoff.hpp"

namespace xover::nic {

inline constexpr std::size_t kCacheLine = 64;
// The memfd: this page, then the NIC's TX handoff (nic/tx_handoff.hpp).
inline constexpr std::size_t kStatePageBytes = 4096;
inline constexpr std::size_t kSharedStateSize =
    kStatePageBytes + (sizeof(TxHandoff) + kStatePageBytes - 1) / kStatePageBytes * kStatePageBytes;
inline constexpr std::uint32_t kSharedStateMagic = 0x53434e58;  // "XNCS"
// 2: peer_irq; 3: rx_filter, rx_irq_deferred; 4: window_tx; 5: TX handoff;
// 6: a common part and one part per model (a union at kModelPartOffset),
// kRxStripCrc on a bit of its own; 7: virtio-net window_loans; 8: the
// cross-process locks hold their holder's identity (owned_lock.hpp); 9: the
// owner's RX changes wait for the lock's holder (rx_change); 10: a
// PeerInterrupt's in-flight count per producer slot; 11: window_rx_fresh, the
// virtio-net window loans' taken heads; 12: ring_area_gpa.
inline constexpr std::uint32_t kSharedStateVersion = 12;
inline constexpr unsigned kMaxProducerSlots = 8;  // links per NIC
static_assert(kPeerInterruptSlots == kMaxProducerSlots);

// SharedNicState::model: which NIC model owns the page, so which member of
// its model part is live.
enum class ModelId : std::uint32_t { E1000 = 0, VirtioNet = 1 };

// Bits of SharedNicState::link_flags.
enum LinkFlag : std::uint32_t {
    kOwnerRxEnabled = 1u << 0,  // guest enabled receive (e1000 RCTL.EN / virtio DRIVER_OK)
    kOwnerLinkUp = 1u << 1,     // the owner's NIC reports link up to its guest
    kOwnerRxFilter = 1u << 2,   // e1000.rx_filter holds the owner's receive filter (else: accept all)
    kOwnerRxIrqModerated = 1u << 3,  // RXT0 goes through the owner's timers (rx_irq_deferred)
};
inline constexpr std::array<std::uint32_t, 4> kLinkFlags{kOwnerRxEnabled, kOwnerLinkUp, kOwnerRxFilter,
                                                         kOwnerRxIrqModerated};
static_assert(distinct_bits(kLinkFlags));

// Bits of RxConfig::features, one set for every model (a bit another model
// does not use stays 0).
inline constexpr std::uint32_t kRxEventIdx = 1u << 0;   // virtio: VIRTIO_RING_F_EVENT_IDX negotiated
inline constexpr std::uint32_t kRxMergeable = 1u << 1;  // virtio: VIRTIO_NET_F_MRG_RXBUF negotiated
inline constexpr std::uint32_t kRxIndirect = 1u << 2;   // virtio: VIRTIO_RING_F_INDIRECT_DESC negotiated
inline constexpr std::uint32_t kRxStripCrc = 1u << 3;   // e1000: RCTL.SECRC (no FCS after the frame)
inline constexpr std::array<std::uint32_t, 4> kRxFeatureFlags{kRxEventIdx, kRxMergeable, kRxIndirect, kRxStripCrc};
static_assert(distinct_bits(kRxFeatureFlags));

// One producer's counters in this NIC's page. Written only by the producer
// the broker gave this slot (relaxed: statistics); read by the broker and
// the owner.
struct alignas(kCacheLine) ProducerSlot {
    std::atomic<std::uint64_t> frames{0};   // frames placed in this NIC's RX ring
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> dropped{0};  // ring full / RX disabled / bad descriptor
    std::atomic<std::uint64_t> copies{0};   // frames that needed a memcpy (window mode fallback)
    std::atomic<std::uint64_t> filtered{0};  // dropped: the owner's receive filter rejects them
};

// The owner's transmit counters. Written only by the owner (relaxed:
// statistics); read by the broker.
struct alignas(kCacheLine) OwnerCounters {
    std::atomic<std::uint64_t> tx_frames{0};  // frames this NIC sent over crossover links
    std::atomic<std::uint64_t> tx_bytes{0};
    std::atomic<std::uint64_t> tx_fallback{0};  // frames that took the physical path instead
};

// The owner's RX ring as the producers need it. Written only by whoever
// holds the producer lock (the owner, or a holder applying the owner's
// posted change: rx_change.hpp), inside a seqcount (publish_rx_ring): seq
// odd = being changed; producers retry (or skip the batch) until they read
// the same even value before and after the fields.
struct alignas(kCacheLine) RxConfig {
    std::atomic<std::uint32_t> seq{0};
    std::atomic<std::uint32_t> kind{0};          // RxRingKind
    std::atomic<std::uint64_t> ring_gpa{0};      // e1000: RDBA; virtio: descriptor table
    std::atomic<std::uint64_t> avail_gpa{0};     // virtio only
    std::atomic<std::uint64_t> used_gpa{0};      // virtio only
    std::atomic<std::uint32_t> ring_entries{0};  // e1000: RDLEN/16; virtio: queue size
    std::atomic<std::uint32_t> buffer_size{0};   // e1000: from RCTL.BSIZE; virtio: 0 (per descriptor)
    std::atomic<std::uint32_t> features{0};      // kRx* bits
};

struct SharedNicState {
    // ---------------------------------------------------------- common part
    // Identity. Owner, once, before the page is registered: magic last
    // (release); readers check it first (acquire, valid()).
    alignas(kCacheLine) std::atomic<std::uint32_t> magic{0};
    std::atomic<std::uint32_t> version{0};
    std::atomic<std::uint32_t> model{0};  // ModelId

    // Producer position (e1000 RDH; virtio: the next avail index producers
    // consume). Written only holding producer_lock (by producers, by the
    // owner's own slow path, by the owner's RX changes), release; the owner
    // reads it with acquire (owner_rdh: guest RDH reads, its TX completion
    // logic), a producer under the lock.
    alignas(kCacheLine) std::atomic<std::uint32_t> rdh{0};
    // Consumer position (e1000 RDT as the guest wrote it; virtio: unused,
    // the avail index lives in guest RAM). Owner only, release; producers
    // read it with acquire before touching descriptors it hands over.
    alignas(kCacheLine) std::atomic<std::uint32_t> rdt{0};
    // Interrupt causes (e1000 ICR; virtio: unused). Producers set causes
    // with fetch_or, never a plain store (bits would be lost); the owner
    // clears them on a guest ICR read with exchange(0). All seq_cst (the
    // interrupt rule above).
    alignas(kCacheLine) std::atomic<std::uint32_t> icr{0};
    // Interrupt mask (e1000 IMS). Owner only; seq_cst (the interrupt rule).
    alignas(kCacheLine) std::atomic<std::uint32_t> ims{0};

    // Link state and the producer-side coordination words.
    // LinkFlag bits. Owner only (fetch_or/fetch_and, release), except
    // kOwnerRxEnabled: changed only holding producer_lock, as part of an
    // RX change (rx_change.hpp); producers read with acquire.
    alignas(kCacheLine) std::atomic<std::uint32_t> link_flags{0};
    // One producer batch at a time; holds its holder's identity, so a
    // holder that died is recovered (owned_lock.hpp).
    OwnedLock producer_lock;
    // A producer that found the ring full sets this before giving up
    // (seq_cst, then a fence, then it looks again); the owner, after
    // publishing a new rdt, exchanges it to 0 and if it was set rings the
    // producers' doorbells. So a full ring costs one eventfd write when
    // space returns, and nothing otherwise.
    std::atomic<std::uint32_t> producer_waiting{0};
    // Producers: "frames arrived, deliver RXT0 with your moderation" (the
    // interrupt moderation rule above; exchange, seq_cst, both sides); the
    // owner takes it.
    std::atomic<std::uint32_t> rx_irq_deferred{0};

    RxConfig rx_config;
    OwnerCounters owner;
    ProducerSlot slots[kMaxProducerSlots];
    // Unicast frames the owner's backend placed in its RX ring, per source
    // MAC: a sender switching to a link waits for these. Owner only (its
    // I/O thread), release; producers read with acquire
    // (slow_path_arrivals.hpp).
    SlowPathArrivals slow_arrivals;

    // Window mode: the guest-physical address of this NIC's RX half while
    // it is mapped onto link `window_rx_link`'s shared element (0: not
    // mapped). A producer places frames in place only while both say so:
    // its TX half and our RX half are the same memory. Owner only: the gpa,
    // then the link (seq_cst), then it takes producer_waiting; a producer
    // waiting for the mapping sets producer_waiting, then reads both again
    // (seq_cst), so one side sees the other.
    alignas(kCacheLine) std::atomic<std::uint64_t> window_rx_gpa{0};
    std::atomic<std::uint64_t> window_rx_link{0};
    // Whether the RX ring was fresh when its half was mapped: nothing ever
    // placed in it, so no frame its guest may still read lies in the half.
    // Only then may a producer put its TX half on the element (zero copy:
    // its slot k is our buffer k, each held by one guest at a time). Owner
    // only, written before window_rx_link (which publishes it).
    std::atomic<std::uint32_t> window_rx_fresh{0};
    // Window mode: where this NIC's ring area (crossover/ring_area.hpp)
    // decodes now (0: nowhere). Every peer of this NIC translates
    // addresses in [ring_area_gpa, + its size) to the ring area's memfd
    // (a copy-link peer the rest to our RAM; a window peer maps none of
    // it). Owner only, release; a stale value only misplaces an access
    // within the area.
    std::atomic<std::uint64_t> ring_area_gpa{0};

    // An RX change the owner made while a producer held the lock, waiting
    // for that holder (or the next) to apply it (rx_change.hpp).
    PendingRxChange rx_change;

    // ------------------------------------------- the owner's model's part
    // The member `model` names is live; only that model's views and the
    // model itself touch it (rules in model_state.hpp).
    union {
        E1000State e1000;
        VirtioNetState virtio_net;
    };

    // Zeroed, as a new memfd is; initialize() makes it a page.
    SharedNicState() : e1000() {}

    // Sets identity fields and clears everything else (the owner, once).
    void initialize(std::uint32_t model_id);
    bool valid() const {
        return magic.load(std::memory_order_acquire) == kSharedStateMagic &&
               version.load(std::memory_order_relaxed) == kSharedStateVersion;
    }

    // --- the producer lock ---
    // Taking it and releasing it each apply an RX change the owner posted
    // meanwhile (rx_change.hpp): no batch starts with a description older
    // than the owner's last change.
    bool try_lock_producer() {
        if (!producer_lock.try_lock()) return false;
        apply_posted_rx_change();
        return true;
    }
    // One short spin, recovering a dead holder's lock (owned_lock.hpp).
    bool try_lock_producer_briefly() {
        if (!producer_lock.try_lock_briefly()) return false;
        apply_posted_rx_change();
        return true;
    }
    void unlock_producer() {
        apply_posted_rx_change();
        producer_lock.unlock();
    }
    // The lock's holder: applies what the owner posted, if anything.
    void apply_posted_rx_change();

    // --- producer side ---
    // Sets cause bits; returns true when the owner must be interrupted (a
    // cause that is now pending is unmasked): the caller then writes the
    // owner's irqfd.
    bool raise(std::uint32_t causes) {
        icr.fetch_or(causes, std::memory_order_seq_cst);
        return (ims.load(std::memory_order_seq_cst) & causes) != 0;
    }
    void publish_rdh(std::uint32_t value) { rdh.store(value, std::memory_order_release); }
    // A producer found no room (or no mapping yet): it flags that it waits,
    // then looks again. The owner publishes, then takes the flag
    // (take_producer_waiting), so one of the two sides sees the other.
    void mark_producer_waiting() {
        producer_waiting.store(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    std::uint32_t load_rdt() const { return rdt.load(std::memory_order_acquire); }

    // --- owner side ---
    void publish_rdt(std::uint32_t value) { rdt.store(value, std::memory_order_release); }
    std::uint32_t load_rdh() const { return rdh.load(std::memory_order_acquire); }
    // Makes `change` what producers use, never waiting: at once when the
    // producer lock is free (or its holder dead); else it is posted for the
    // holder, and false says so: the owner then makes sure, within a
    // millisecond or so, that it is applied (settle_rx_change).
    bool change_rx(const RxChange& change);
    // True when nothing the owner posted is left (taking the lock briefly
    // to apply it if needed).
    bool settle_rx_change();
    bool rx_change_posted() const {
        return PendingRxChange::posted_bits(rx_change.state.load(std::memory_order_acquire)) != 0;
    }
    // The producer position as the owner's guest sees it: the one it set
    // last if no holder applied it yet, else the published one.
    std::uint32_t owner_rdh() const {
        if (auto posted = rx_change.posted_rdh()) return *posted;
        return load_rdh();
    }
    // Guest read of ICR: read-to-clear.
    std::uint32_t take_icr() { return icr.exchange(0, std::memory_order_seq_cst); }
    // Guest write of IMS/IMC. Returns the pending unmasked causes, which the
    // owner must raise itself (see the interrupt rule above).
    std::uint32_t set_ims(std::uint32_t value) {
        ims.store(value, std::memory_order_seq_cst);
        return icr.load(std::memory_order_seq_cst) & value;
    }
    // Returns true if a producer was waiting for RX space.
    bool take_producer_waiting() { return producer_waiting.exchange(0, std::memory_order_acq_rel) != 0; }
    // Returns true if producers placed frames whose RXT0 the owner delivers.
    bool take_rx_irq_deferred() { return rx_irq_deferred.exchange(0, std::memory_order_seq_cst) != 0; }

    // --- producer side, owners that moderate RXT0 ---
    // After publishing RDH. True: the caller set the flag and must ring the
    // owner's doorbell (after releasing the lock).
    bool defer_rx_irq() { return rx_irq_deferred.exchange(1, std::memory_order_seq_cst) == 0; }

    // RX ring description (the lock's holder writes, producers read
    // consistently).
    using RxRing = nic::RxRing;
    void publish_rx_ring(const RxRing& ring);
    // False while the owner is mid-update (caller retries later).
    bool read_rx_ring(RxRing& out) const;
};

// A seqcount without fences (fences are invisible to ThreadSanitizer):
// the writer makes seq odd, stores the fields with release, then makes seq
// even with release; the reader loads the fields with acquire. A reader
// that sees any new field value therefore also sees the odd seq store
// before it, so its second seq load differs from the first and it retries.
// On x86 these orderings cost nothing extra.
inline void SharedNicState::publish_rx_ring(const RxRing& ring) {
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

inline bool SharedNicState::read_rx_ring(RxRing& out) const {
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

// The ABI's layout. A change here is a change of kSharedStateVersion.
inline constexpr std::size_t kModelPartOffset = 1472;
static_assert(std::is_standard_layout_v<SharedNicState>);
static_assert(offsetof(SharedNicState, magic) == 0);
static_assert(offsetof(SharedNicState, rdh) == 64);
static_assert(offsetof(SharedNicState, rdt) == 128);
static_assert(offsetof(SharedNicState, icr) == 192);
static_assert(offsetof(SharedNicState, ims) == 256);
static_assert(offsetof(SharedNicState, link_flags) == 320);
static_assert(offsetof(SharedNicState, producer_lock) == 328);  // tests/integration/crossover_lock_holder.sh
static_assert(offsetof(SharedNicState, rx_config) == 384);
static_assert(offsetof(SharedNicState, owner) == 448);
static_assert(offsetof(SharedNicState, slots) == 512);
static_assert(offsetof(SharedNicState, slow_arrivals) == 1024);
static_assert(offsetof(SharedNicState, window_rx_gpa) == 1344);
static_assert(offsetof(SharedNicState, ring_area_gpa) == 1368);
static_assert(offsetof(SharedNicState, rx_change) == 1408);
static_assert(offsetof(SharedNicState, e1000) == kModelPartOffset);
static_assert(offsetof(SharedNicState, virtio_net) == kModelPartOffset);
static_assert(offsetof(E1000State, rx_filter) == 64);
static_assert(sizeof(SharedNicState) <= kStatePageBytes);

// The NIC's TX handoff, right after its state page in the same mapping
// (every mapping of the memfd covers kSharedStateSize bytes).
inline TxHandoff& tx_handoff(SharedNicState& state) {
    return *reinterpret_cast<TxHandoff*>(reinterpret_cast<std::uint8_t*>(&state) + kStatePageBytes);
}
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

}  // namespace xover::nic
