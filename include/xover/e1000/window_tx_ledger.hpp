// The e1000 sender's record of TX slots lent over a window link, and the
// walk that completes them (sets DD once the receiver's guest has given the
// buffer back). Either process may walk, through the e1000's TX view
// (nic/tx_view.hpp: complete_window):
//   - the sender itself (its TDT write, its doorbell, the link going down);
//   - the receiver, right after its guest wrote RDT: it is already in
//     userspace then, so the sender completes without any thread of its own
//     waking. (A wake-up is an io thread preempting a vCPU on this host,
//     and on the sender's own core it halved the sender's rate.)
//
// Rules (nic::WindowTxLedger lives in the e1000 part of the sender's shared
// page, nic/shared_nic_state.hpp):
//   lent      done | end << 32, slot indices in the sender's TX ring: slots
//             [done, end) are lent. The sender moves `end` (lend(), a CAS,
//             no lock); walkers move `done`, holding `lock`.
//   lock      one walker at a time: a walker decides "not held", then sets
//             DD; a second walker doing the same after the guest reused the
//             slot would complete the new frame. The receiver only
//             try-locks (on failure it rings the sender's doorbell, and the
//             sender walks with the newer RDT); the sender spins briefly
//             (recovering a dead walker's lock), and looks again 1 ms later
//             while a live walker keeps it.
//   Both walk holding the receiver's producer_lock, which the sender
//   holds for a whole batch: a walk sees `end` and the receiver's RDH from
//   the same side of a batch, never a lent slot whose frame the
//   receiver's guest cannot see yet.
//   peer_may_complete  the sender's TXDW needs none of its own timers
//             (TIDV/TADV/ITR): a receiver that completed slots raises TXDW
//             like a producer raises RXT0 (nic/shared_nic_state.hpp's rule).
#pragma once

#include <atomic>
#include <cstdint>

#include "xover/e1000/registers.hpp"
#include "xover/nic/shared_nic_state.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::e1000::window_tx {

struct Lent {
    std::uint32_t done = 0, end = 0;
    bool any() const { return done != end; }
};
inline Lent unpack(std::uint64_t v) { return {std::uint32_t(v), std::uint32_t(v >> 32)}; }
inline std::uint64_t pack(Lent l) { return std::uint64_t(l.done) | std::uint64_t(l.end) << 32; }

inline Lent lent(const nic::WindowTxLedger& ledger) { return unpack(ledger.lent.load(std::memory_order_acquire)); }

// Sender, slot `index` of a ring of `entries` just went to the peer in
// place. Slots between the last lent one and `index` took the copy path
// (completed already); with nothing lent the range starts at `index`.
inline void lend(nic::WindowTxLedger& ledger, std::uint32_t index, std::uint32_t entries, std::uint64_t ring_gpa,
                 std::uint64_t link) {
    std::uint64_t cur = ledger.lent.load(std::memory_order_acquire);
    for (;;) {
        Lent l = unpack(cur);
        if (!l.any()) {
            // Nothing lent: no walker touches the ring fields now.
            ledger.ring_gpa.store(ring_gpa, std::memory_order_relaxed);
            ledger.ring_entries.store(entries, std::memory_order_relaxed);
            ledger.link.store(link, std::memory_order_relaxed);
            l.done = index;
        }
        l.end = (index + 1) % entries;
        if (ledger.lent.compare_exchange_weak(cur, pack(l), std::memory_order_acq_rel)) return;
    }
}

// The most descriptors a ring can have: TDLEN holds 20 bits of bytes.
inline constexpr std::uint32_t kMaxRingEntries = 0xFFF80 / kDescriptorSize;

inline bool try_lock(nic::WindowTxLedger& ledger) { return ledger.lock.try_lock(); }
// The sender's wait: walkers hold the lock for one walk, so a short spin
// sees it free unless the walker is descheduled (then it is walking for
// us) or died (then the lock is recovered, nic/owned_lock.hpp).
inline bool lock(nic::WindowTxLedger& ledger) { return ledger.lock.try_lock_briefly(); }
inline void unlock(nic::WindowTxLedger& ledger) { ledger.lock.unlock(); }

// Sender, under the lock (or with the peer known gone): nothing is lent
// any more (a reset, a TDH write, a new ring). The next lend() starts the
// range at its own slot.
inline void forget(nic::WindowTxLedger& ledger) { ledger.lent.store(pack({}), std::memory_order_release); }

struct WalkResult {
    std::uint32_t completed = 0;  // slots that left the lent range
    std::uint32_t reported = 0;   // of those, descriptors with RS: DD was set
    bool all_delayed = true;      // every reported one had IDE (TX interrupt delay)
    bool unreachable = false;     // stopped at a descriptor outside `sender_memory`
};

// Under the lock. Completes lent slots from `done` on up to the first the
// receiver's guest still holds: RX descriptors [rx_rdt, rx_rdh) of a ring as
// large as ours are its guest's (all of them when they are equal). With
// `peer_gone` every lent slot completes.
inline WalkResult walk(nic::WindowTxLedger& ledger, vmm::GuestMemory& sender_memory, std::uint32_t rx_rdt,
                       std::uint32_t rx_rdh, bool peer_gone) {
    WalkResult r;
    std::uint64_t cur = ledger.lent.load(std::memory_order_acquire);
    Lent l = unpack(cur);
    std::uint32_t n = ledger.ring_entries.load(std::memory_order_relaxed);
    if (!l.any()) return r;
    // Both processes write this page: a ring larger than TDLEN can describe
    // (20 bits of bytes) is garbage, and bounds the walk as much as a real
    // ring does.
    if (n == 0 || n > kMaxRingEntries || l.done >= n || l.end >= n) {  // a replaced ring: nothing left to find
        ledger.lent.compare_exchange_strong(cur, pack({l.end, l.end}), std::memory_order_acq_rel);
        return r;
    }
    std::uint64_t base = ledger.ring_gpa.load(std::memory_order_relaxed);
    std::uint32_t held = rx_rdt == rx_rdh ? n : (rx_rdh + n - rx_rdt) % n;
    std::uint32_t done = l.done;
    while (done != l.end && (peer_gone || (done + n - rx_rdt) % n >= held)) {
        auto d = sender_memory.span(base + std::uint64_t(done) * kDescriptorSize, kDescriptorSize);
        if (d.empty()) {
            if (!peer_gone) {
                r.unreachable = true;
                break;
            }
        } else if (d[11] & txd::CMD_RS) {
            // The receiver read the frame before the sender's guest may reuse it.
            std::atomic_ref<std::uint8_t> status(d[12]);
            status.fetch_or(txd::STA_DD, std::memory_order_release);
            ++r.reported;
            if (!(d[11] & txd::CMD_IDE)) r.all_delayed = false;
        }
        done = (done + 1) % n;
        ++r.completed;
    }
    if (r.completed == 0) return r;
    // `end` may have grown meanwhile (lend() needs no lock): keep it.
    while (!ledger.lent.compare_exchange_weak(cur, pack({done, unpack(cur).end}), std::memory_order_acq_rel)) {
    }
    return r;
}

}  // namespace xover::e1000::window_tx
