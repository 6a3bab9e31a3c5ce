// How a crossover producer interrupts a virtio-net owner without breaking
// the owner's MSI-X masking or its INTx fallback. Lives in the owner's
// shared NIC state page (SharedNicState::virtio_net.peer_irq).
//
// The owner publishes a route for its RX queue's interrupt, recomputed
// under its device lock whenever MSI-X enable/function mask, a vector's
// mask bit, the RX queue's vector or the device status changes:
//   Direct    the RX queue's vector is the one whose irqfd the producers
//             hold, and it is deliverable: producers write that irqfd
//             (no exit, no wake-up of the owner);
//   ViaOwner  the interrupt must be raised by the owner itself (INTx: ISR
//             bit + level; or MSI-X on a vector the producers hold no fd
//             for): producers ring the owner's doorbell;
//   Off       masked (per vector or function) or no vector: producers only
//             leave `pending` set. The owner reports it in the PBA and
//             delivers it when the route opens again.
//
// Ordering (Dekker-style store/load pairs, all seq_cst):
//   producer:  in_flight[slot] += 1; pending |= 1; r = route; act; in_flight[slot] -= 1
//   owner:     route = r'; [leaving Direct: wait until every in_flight[] == 0];
//              if r' != Off: take pending (exchange 0), deliver it itself
// Either the producer's load of `route` sees the owner's new route, or the
// owner's exchange sees the producer's pending bit (or both). In Direct
// mode whoever clears `pending` (producer fetch_and, owner exchange) sends
// the one interrupt, so a concurrent unmask never loses one and sends at
// most one extra. A producer that read Direct just before the owner masked
// holds in_flight until its irqfd write is done, and the owner waits for
// that before the guest's mask write completes: after a mask, no message.
// (The wait is bounded: a producer that died in that window of a few
// instructions must not hang its partner; see set_route(). Each producer
// counts in its own slot, the one the broker gave its link in this page,
// so the owner forgets a dead producer's count when its link goes down
// instead of waiting out every later route change.)
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace xover::nic {

// One in-flight count per producer slot (shared_nic_state.hpp's
// kMaxProducerSlots: links per NIC).
inline constexpr unsigned kPeerInterruptSlots = 8;

struct PeerInterrupt {
    enum Route : std::uint32_t { Off = 0, Direct = 1, ViaOwner = 2 };
    // What a producer's raise() did, for its counters.
    enum class Outcome { Signalled, WokeOwner, LeftPending, Merged };

    std::atomic<std::uint32_t> route{Off};        // owner-written
    std::atomic<std::uint32_t> pending{0};        // bit 0: RX interrupt owed to the guest
    // Per producer slot: that producer is between reading route and acting on it.
    std::atomic<std::uint32_t> in_flight[kPeerInterruptSlots]{};
    std::atomic<std::uint32_t> wait_timeouts{0};  // owner: a producer stayed in flight too long

    void clear() {
        route.store(Off, std::memory_order_relaxed);
        pending.store(0, std::memory_order_relaxed);
        for (auto& f : in_flight) f.store(0, std::memory_order_relaxed);
        wait_timeouts.store(0, std::memory_order_relaxed);
    }

    // Owner, when the link of the producer in `slot` is gone: a count it
    // left (it died in flight) is no longer waited for.
    void forget_producer(unsigned slot) { in_flight[slot % kPeerInterruptSlots].store(0, std::memory_order_seq_cst); }

    // --- producer side: frames are published (used idx released) and the
    // ring asked for an interrupt. `signal()` writes the owner's irqfd,
    // `wake()` its doorbell; both at most once, neither under a lock.
    // `slot`: the producer's slot in this page (its link's).
    template <class Signal, class Wake>
    Outcome raise(unsigned slot, Signal&& signal, Wake&& wake) {
        constexpr auto sc = std::memory_order_seq_cst;
        std::atomic<std::uint32_t>& mine = in_flight[slot % kPeerInterruptSlots];
        mine.fetch_add(1, sc);
        std::uint32_t before = pending.fetch_or(1, sc);
        Outcome outcome = Outcome::LeftPending;
        switch (route.load(sc)) {
        case Direct:
            // Claim the bit: if the owner (or another producer) took it
            // first, that side sends the interrupt, which covers ours.
            if (pending.fetch_and(~1u, sc) & 1) {
                signal();
                outcome = Outcome::Signalled;
            } else {
                outcome = Outcome::Merged;
            }
            break;
        case ViaOwner:
            // One doorbell per 0 -> 1 transition: the owner takes the bit
            // when it wakes, so a set bit means a wake-up is on its way.
            if (!(before & 1)) {
                wake();
                outcome = Outcome::WokeOwner;
            } else {
                outcome = Outcome::Merged;
            }
            break;
        default: break;  // masked: stays pending
        }
        mine.fetch_sub(1, std::memory_order_release);
        return outcome;
    }

    // --- owner side (under the owner's device lock) ---
    // Publishes a new route. Returns true when an interrupt is pending that
    // the owner must now deliver itself (the route is open again).
    // `patience` outlasts a live producer preempted inside its few
    // instructions on a loaded host; only a producer that died there makes
    // it expire.
    bool set_route(Route next, std::chrono::microseconds patience = std::chrono::milliseconds(20)) {
        constexpr auto sc = std::memory_order_seq_cst;
        Route old = Route(route.exchange(next, sc));
        if (old == Direct && next != Direct) wait_for_producers(patience);
        if (next == Off) return false;
        return pending.exchange(0, sc) & 1;
    }
    // ViaOwner doorbell, a PBA read or a mask change while Off: takes the
    // pending bit (the owner then delivers or records it).
    bool take_pending() { return pending.exchange(0, std::memory_order_seq_cst) & 1; }
    bool is_pending() const { return pending.load(std::memory_order_seq_cst) & 1; }

private:
    void wait_for_producers(std::chrono::microseconds patience) {
        auto deadline = std::chrono::steady_clock::now() + patience;
        for (auto& f : in_flight) {
            while (f.load(std::memory_order_seq_cst) != 0) {
                if (std::chrono::steady_clock::now() >= deadline) {
                    wait_timeouts.fetch_add(1, std::memory_order_relaxed);
                    return;
                }
                std::this_thread::yield();
            }
        }
    }
};

}  // namespace xover::nic
