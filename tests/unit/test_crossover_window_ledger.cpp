// The window TX ledger (window_tx_ledger.hpp): an e1000 sender's record of
// TX slots lent over a window link, and the walk either process runs to
// complete them. Single-threaded cases pin down the rules (held by RDT and
// RDH, in order, the walk keeps an end that grew, hostile values stay
// inside guest memory); the last case runs a sender and a receiver at once
// (and under TSan in CI): a slot never completes while the receiver's guest
// still holds its frame.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "fake_guest_memory.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/e1000/registers.hpp"
#include "xover/e1000/window_tx_ledger.hpp"
#include "xover/nic/tx_view.hpp"

using namespace xover;
using namespace xover::test;
namespace wtx = xover::e1000::window_tx;

namespace {
// The sender's TX ring as the ledger's walk sees it (RS on every slot).
struct LentRing {
    static constexpr std::uint64_t kRing = 0x1000;
    static constexpr std::uint32_t kEntries = 8;
    FakeGuestMemory memory{1 << 20};
    crossover::SharedStatePage page = crossover::SharedStatePage::create("ledger-test", 0);
    nic::WindowTxLedger& ledger = page.state().e1000.window_tx;
    LentRing() {
        for (std::uint32_t k = 0; k < kEntries; ++k) {
            std::uint8_t cmd = e1000::txd::CMD_EOP | e1000::txd::CMD_RS;
            memory.poke(kRing + k * 16 + 11, &cmd, 1);
        }
    }
    bool dd(std::uint32_t k) {  // atomic: walkers set it from other threads
        auto s = memory.span(kRing + k * 16 + 12, 1);
        return std::atomic_ref<std::uint8_t>(s[0]).load(std::memory_order_acquire) & e1000::txd::STA_DD;
    }
    void lend(std::uint32_t k) { e1000::window_tx::lend(ledger, k, kEntries, kRing, 7); }
    e1000::window_tx::WalkResult walk(std::uint32_t rdt, std::uint32_t rdh, bool gone = false) {
        REQUIRE(e1000::window_tx::try_lock(ledger));
        auto r = e1000::window_tx::walk(ledger, memory, rdt, rdh, gone);
        e1000::window_tx::unlock(ledger);
        return r;
    }
};
}  // namespace

TEST_CASE("window ledger: a slot completes once the receiver's RDT has passed it, in order") {
    LentRing ring;
    for (std::uint32_t k = 5; k < 8; ++k) ring.lend(k);  // slots 5, 6, 7 lent; they wrap the ring
    ring.lend(0);
    CHECK(wtx::lent(ring.ledger).done == 5);
    CHECK(wtx::lent(ring.ledger).end == 1);
    CHECK(ring.ledger.link.load() == 7);
    // The receiver's guest holds RX 5..0 (RDT 5, RDH 1): nothing is back.
    CHECK(ring.walk(5, 1).completed == 0);
    CHECK_FALSE(ring.dd(5));
    // It returned 5 and 6 (RDT 7): those two complete, 7 still held.
    auto r = ring.walk(7, 1);
    CHECK(r.completed == 2);
    CHECK(r.reported == 2);
    CHECK_FALSE(r.all_delayed);
    CHECK(ring.dd(5));
    CHECK(ring.dd(6));
    CHECK_FALSE(ring.dd(7));
    CHECK(wtx::lent(ring.ledger).done == 7);
    // More lent while it walked: the walk keeps the new end.
    ring.lend(1);
    CHECK(ring.walk(0, 0).completed == 0);  // RDT == RDH: its guest holds every buffer
    CHECK(ring.walk(1, 2).completed == 2);  // it holds only RX 1: 7 and 0 are back
    CHECK(ring.dd(7));
    CHECK(ring.dd(0));
    CHECK_FALSE(ring.dd(1));
    CHECK(wtx::lent(ring.ledger).done == 1);
    CHECK(wtx::lent(ring.ledger).end == 2);
    // The receiver gone: the rest completes whatever RDT says.
    CHECK(ring.walk(1, 1, true).completed == 1);
    CHECK(ring.dd(1));
    CHECK_FALSE(wtx::lent(ring.ledger).any());
}

TEST_CASE("window ledger: hostile ring values never reach outside the sender's memory") {
    LentRing ring;
    // A ring address past the end of guest memory: the receiver stops there
    // (the sender walks itself); with the receiver gone, slots complete.
    wtx::lend(ring.ledger, 2, LentRing::kEntries, 0xfffffffffff00000ull, 7);
    auto r = ring.walk(4, 5);
    CHECK(r.unreachable);
    CHECK(r.completed == 0);
    CHECK(ring.walk(4, 5, true).completed == 1);
    // A lent range that does not fit the ring (entries changed): dropped.
    ring.lend(3);
    ring.ledger.ring_entries.store(2);
    CHECK(ring.walk(0, 0).completed == 0);
    CHECK_FALSE(wtx::lent(ring.ledger).any());
    // A ring no TDLEN can describe, with a lent range billions of slots
    // long (the peer wrote the page): no walk, nothing completed.
    ring.lend(3);
    ring.ledger.ring_entries.store(0xffffffffu);
    ring.ledger.lent.store(wtx::pack({0, 0xfffffffeu}));
    CHECK(ring.walk(0, 0, true).completed == 0);
    CHECK_FALSE(wtx::lent(ring.ledger).any());
}

TEST_CASE("window ledger: the receiver completes lent slots through the sender model's TX view") {
    LentRing ring;
    auto view = e1000::make_tx_view();
    for (std::uint32_t k = 0; k < 3; ++k) ring.lend(k);
    nic::SharedNicState& sender = ring.page.state();
    // The sender's TXDW needs its timers: not the receiver's to complete.
    CHECK_FALSE(view->window_lent(sender, 7));
    ring.ledger.peer_may_complete.store(1);
    CHECK(view->window_lent(sender, 7));
    CHECK_FALSE(view->window_lent(sender, 8));  // lent over another link
    // The receiver's guest gave RX 0 and 1 back (RDT 2, RDH 3).
    crossover::SharedStatePage receiver_page = crossover::SharedStatePage::create("ledger-receiver", 0);
    nic::SharedNicState& receiver = receiver_page.state();
    receiver.publish_rdt(2);
    receiver.publish_rdh(3);
    using Completer = nic::TxView::Completer;
    auto done = view->complete_window(Completer::Receiver, ring.memory, sender, &ring.memory, &receiver);
    CHECK(done.completed == 2);
    CHECK(done.reported == 2);
    CHECK_FALSE(done.unreachable);
    CHECK(ring.dd(0));
    CHECK(ring.dd(1));
    CHECK_FALSE(ring.dd(2));
    CHECK(ring.ledger.completed_by_peer.load() == 2);
    // TXDW as the sender's mask says: masked, only the cause is set.
    CHECK(view->signal_remote(sender) == nic::TxIrq::None);
    CHECK(sender.take_icr() == e1000::icr::TXDW);
    sender.set_ims(e1000::icr::TXDW);
    CHECK(view->signal_remote(sender) == nic::TxIrq::Signal);
    // A walker busy on the sender's side: the sender finishes the walk.
    REQUIRE(wtx::try_lock(ring.ledger));
    receiver.publish_rdt(0);
    receiver.publish_rdh(0);
    CHECK(view->complete_window(Completer::Receiver, ring.memory, sender, &ring.memory, &receiver).busy);
    wtx::unlock(ring.ledger);
    // A model that keeps no ledger lends nothing.
    CHECK_FALSE(virtio_net::make_tx_view()->window_lent(sender, 7));
}

TEST_CASE("window ledger: the sender completes its own lent slots through the same view") {
    LentRing ring;
    auto view = e1000::make_tx_view();
    using Completer = nic::TxView::Completer;
    for (std::uint32_t k = 0; k < 4; ++k) ring.lend(k);
    nic::SharedNicState& sender = ring.page.state();
    crossover::SharedStatePage receiver_page = crossover::SharedStatePage::create("ledger-receiver", 0);
    nic::SharedNicState& receiver = receiver_page.state();
    CHECK(view->window_any(sender));
    // RX 0 given back (RDT 1, RDH 4): slot 0 only.
    receiver.publish_rdt(1);
    receiver.publish_rdh(4);
    ring.ledger.peer_may_complete.store(1);  // the receiver completes the rest for us: no doorbell
    auto done = view->complete_window(Completer::Sender, ring.memory, sender, &ring.memory, &receiver);
    CHECK(done.completed == 1);
    CHECK(done.reported == 1);
    CHECK(ring.dd(0));
    CHECK_FALSE(ring.dd(1));
    CHECK(ring.ledger.completed_by_peer.load() == 0);  // not the peer's doing
    CHECK(receiver.producer_waiting.load() == 0);
    // TXDW needs the sender's timers: with slots still out, the receiver's
    // next RDT write must ring our doorbell.
    ring.ledger.peer_may_complete.store(0);
    done = view->complete_window(Completer::Sender, ring.memory, sender, &ring.memory, &receiver);
    CHECK(done.completed == 0);
    CHECK(receiver.producer_waiting.load() != 0);
    receiver.producer_waiting.store(0);
    // A receiver never asks itself to ring.
    done = view->complete_window(Completer::Receiver, ring.memory, sender, &ring.memory, &receiver);
    CHECK(receiver.producer_waiting.load() == 0);
    // A dead walker's lock does not stop the sender (it is recovered).
    ring.ledger.lock.word.store(std::uint64_t(0x7ffffff0) << 32 | 1);
    // The link gone: every lent slot completes.
    done = view->complete_window(Completer::Sender, ring.memory, sender, nullptr, nullptr);
    CHECK(done.completed == 3);
    for (std::uint32_t k = 0; k < 4; ++k) CHECK(ring.dd(k));
    CHECK_FALSE(view->window_any(sender));
}


TEST_CASE("crossover: window ledger, a receiver walking beside its sender never completes a held slot",
          "[shared-state]") {
    // Sender: reuses a TX slot only once it has DD (in order, one slot kept
    // free, like nettest), lends it and "places" its frame (RDH) under the
    // receiver's producer lock; while it waits it walks itself now and
    // then. Receiver: consumes frames in order, checks the sender has not
    // completed the slot yet, returns it (RDT = the last one consumed) and
    // walks, as on an RDT write. 20 000 frames through an 8-slot ring.
    LentRing ring;
    constexpr std::uint32_t n = LentRing::kEntries;
    constexpr std::uint32_t kFrames = 20000;
    std::mutex producer_lock;  // the receiver's producer_lock
    std::atomic<std::uint32_t> rdh{0}, rdt{n - 1};
    std::atomic<std::uint32_t> early{0}, lost{0};
    auto dd = [&](std::uint32_t k) { return ring.dd(k); };

    std::thread receiver([&] {
        std::uint32_t next = 0;
        for (std::uint32_t got = 0; got < kFrames;) {
            std::uint32_t head = rdh.load(std::memory_order_acquire);
            if (next == head) continue;
            while (next != head) {
                if (dd(next)) early.fetch_add(1);  // completed before its frame was read
                rdt.store(next, std::memory_order_release);
                next = (next + 1) % n;
                ++got;
            }
            std::lock_guard lock(producer_lock);
            if (!wtx::try_lock(ring.ledger)) continue;  // the sender walks: it would be rung
            wtx::walk(ring.ledger, ring.memory, rdt.load(std::memory_order_acquire),
                      rdh.load(std::memory_order_acquire), false);
            wtx::unlock(ring.ledger);
        }
    });

    std::uint32_t clean = 0;
    for (std::uint32_t sent = 0; sent < kFrames; ++sent) {
        for (unsigned spins = 0; sent - clean >= n - 1; ++spins) {
            while (sent - clean >= n - 1 && dd(clean % n)) ++clean;
            if (sent - clean >= n - 1 && spins % 64 == 63) {  // the sender's own walk (a TDT write, a doorbell)
                if (wtx::lock(ring.ledger)) {
                    wtx::walk(ring.ledger, ring.memory, rdt.load(std::memory_order_acquire),
                              rdh.load(std::memory_order_acquire), false);
                    wtx::unlock(ring.ledger);
                }
            }
        }
        std::uint32_t k = sent % n;
        auto status = ring.memory.span(LentRing::kRing + k * 16 + 12, 1);
        std::atomic_ref<std::uint8_t>(status[0]).store(0, std::memory_order_relaxed);
        std::lock_guard lock(producer_lock);  // one batch of one frame
        ring.lend(k);
        rdh.store((k + 1) % n, std::memory_order_release);
    }
    receiver.join();
    REQUIRE(wtx::lock(ring.ledger));
    wtx::walk(ring.ledger, ring.memory, 0, 0, true);  // the link goes down: the rest comes back
    wtx::unlock(ring.ledger);
    for (std::uint32_t k = 0; k < n; ++k)
        if (!dd(k)) lost.fetch_add(1);
    CHECK(early.load() == 0);
    CHECK(lost.load() == 0);
    CHECK_FALSE(wtx::lent(ring.ledger).any());
}
