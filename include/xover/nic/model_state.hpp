// The per-model parts of the shared NIC state page (shared_nic_state.hpp):
// what only one model's views read and write. The page holds the part of
// its owner's model (SharedNicState::model), at a fixed offset, in a union:
// the common part never depends on which model owns the page.
//
// Owner and ordering of each field are given where it is declared; "owner"
// is the process whose guest drives the NIC, "producer" a process writing
// frames into its RX ring (a crossover peer, or the owner's own slow path),
// "walker" whoever runs the e1000 window ledger's walk.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "xover/nic/owned_lock.hpp"
#include "xover/nic/peer_interrupt.hpp"

namespace xover::nic {

// Words of E1000State::rx_filter (e1000::rx_filter::kWords, asserted there).
inline constexpr unsigned kRxFilterWords = 292;

// Window mode, e1000 senders: the TX slots lent to the window peer, which
// the peer's process may complete itself. The rules (who moves what, under
// which lock) are in e1000/window_tx_ledger.hpp, the only code that
// touches these fields besides the e1000 model.
struct alignas(64) WindowTxLedger {
    // Walkers: one walk at a time (owned_lock.hpp: a walker that died is
    // recovered).
    OwnedLock lock;
    // Owner (release), walkers (acquire): TXDW needs none of the owner's
    // timers, so a walker in the peer's process may raise it.
    std::atomic<std::uint32_t> peer_may_complete{0};
    // done | end << 32, slot indices: [done, end) are lent. The owner moves
    // `end` (CAS, no lock); walkers move `done` holding `lock` (acq_rel).
    std::atomic<std::uint64_t> lent{0};
    // Owner, relaxed, only while nothing is lent (no walker reads them then);
    // walkers read them after an acquire of `lent`.
    std::atomic<std::uint64_t> link{0};          // the window link the slots were lent over
    std::atomic<std::uint64_t> ring_gpa{0};      // the owner's TX descriptor ring (TDBA)
    std::atomic<std::uint32_t> ring_entries{0};  // TDLEN / 16
    // Walkers in the peer's process (relaxed): slots they completed.
    std::atomic<std::uint64_t> completed_by_peer{0};

    void clear();
};

// The e1000 owner's part.
struct E1000State {
    WindowTxLedger window_tx;
    // A copy of the registers the receive filter reads (RCTL, VET, RAL/RAH,
    // MTA, VFTA; e1000/rx_filter.hpp), plus CTRL and RXCSUM, so a producer
    // drops what the owner's NIC would drop and strips tags and checks sums
    // as it would (e1000/rx_delivery.hpp). Owner only, one word per guest
    // register write, with no lock (it never waits for a producer): a
    // producer checks each frame against the words as they are then, as a
    // NIC checks the next frame after a register write. kOwnerRxFilter,
    // set with release after the first full copy, says they are valid.
    alignas(64) std::atomic<std::uint32_t> rx_filter[kRxFilterWords];

    void set_filter_word(unsigned index, std::uint32_t value) {
        rx_filter[index].store(value, std::memory_order_relaxed);
    }
    std::uint32_t filter_word(unsigned index) const { return rx_filter[index].load(std::memory_order_relaxed); }
    void clear();
};

// Window mode, virtio-net senders: the TX heads whose frames sit in the
// window peer's RX buffers of the same number, until the peer's guest makes
// those buffers available again. Either process may see a head come back
// and complete it. The rules are in virtio_net/window_loans.hpp, the only
// code that touches these fields.
struct alignas(64) WindowLoanLedger {
    static constexpr std::uint32_t kMaxHeads = 1024;  // the largest split ring a virtio device accepts
    static constexpr std::uint32_t kWords = kMaxHeads / 64;
    // Every field: written and read only holding the window peer's (the
    // receiver's) producer lock, so relaxed accesses suffice.
    std::atomic<std::uint64_t> link{0};       // the window link the heads were lent over
    std::atomic<std::uint64_t> avail_gpa{0};  // the receiver's RX avail ring the loans were made in
    std::atomic<std::uint32_t> ring_size{0};  // its size; 0: nothing lent, no ring recorded
    std::atomic<std::uint32_t> cursor{0};     // the next avail position to look at
    std::atomic<std::uint64_t> lent[kWords];  // bit k: head k is lent
    std::atomic<std::uint64_t> back[kWords];  // bit k: head k came back, not yet completed
    // Heads the receiver's process took out of `back` and is adding to the
    // sender's used ring (it holds the sender's handoff lock too), and
    // where they stand: 0 none taken, kTakenPending taken, kTakenAt |
    // position once the completion position after them is known. A
    // completer that dies in between leaves them here for the next one to
    // settle (window_loans.hpp: recover_taken).
    static constexpr std::uint32_t kTakenPending = 1;
    static constexpr std::uint32_t kTakenAt = 1u << 16;
    std::atomic<std::uint64_t> taken[kWords];
    std::atomic<std::uint32_t> taken_until{0};
    // Statistics (relaxed): heads the receiver's process completed.
    std::atomic<std::uint64_t> completed_by_peer{0};

    void clear();
};

// The virtio-net owner's part.
struct VirtioNetState {
    // How producers interrupt the RX queue: its route (owner-written) and
    // pending bit, so they honour MSI-X masking and the INTx fallback
    // (rules and orderings in peer_interrupt.hpp).
    alignas(64) PeerInterrupt peer_irq;
    // The same for the TX queue's interrupt (its vector), which a peer's
    // process raises when it completed our TX work (TX handoff, window
    // loans): peer_interrupt.hpp's rules, with the TX queue and its vector.
    alignas(64) PeerInterrupt peer_tx_irq;
    WindowLoanLedger window_loans;

    void clear() {
        peer_irq.clear();
        peer_tx_irq.clear();
        window_loans.clear();
    }
};

inline void WindowLoanLedger::clear() {
    constexpr auto relaxed = std::memory_order_relaxed;
    link.store(0, relaxed);
    avail_gpa.store(0, relaxed);
    ring_size.store(0, relaxed);
    cursor.store(0, relaxed);
    for (auto& w : lent) w.store(0, relaxed);
    for (auto& w : back) w.store(0, relaxed);
    for (auto& w : taken) w.store(0, relaxed);
    taken_until.store(0, relaxed);
    completed_by_peer.store(0, relaxed);
}

inline void WindowTxLedger::clear() {
    constexpr auto relaxed = std::memory_order_relaxed;
    lock.clear();
    peer_may_complete.store(0, relaxed);
    lent.store(0, relaxed);
    link.store(0, relaxed);
    ring_gpa.store(0, relaxed);
    ring_entries.store(0, relaxed);
    completed_by_peer.store(0, relaxed);
}

inline void E1000State::clear() {
    window_tx.clear();
    for (auto& word : rx_filter) word.store(0, std::memory_order_relaxed);
}

}  // namespace xover::nic
