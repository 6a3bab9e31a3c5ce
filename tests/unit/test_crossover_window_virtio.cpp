// Window mode (zero copy) with virtio-net, the parts that need no KVM:
//  - the transmit side of the model against a fake port: a chain that is
//    one buffer at TX-half offset head*2048 goes in place and its used
//    entry waits until the peer's guest gives the RX buffer back (in any
//    order), a full peer stops the walk losslessly, everything else is
//    copied;
//  - the virtio RX view's place(): only the next available chain, head
//    k, one device-writable buffer at the right address, big enough;
//  - virtio_net::WindowLoans: a lent head comes back when the peer's guest makes it
//    available again after the loan, never earlier, whatever the guest
//    writes into its avail ring.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>

#include "crossover_fakes.hpp"
#include "virtio_fakes.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/virtio_net/window_loans.hpp"
#include "xover/nic/rx_view.hpp"
#include "xover/nic/tx_view.hpp"

using namespace xover;
using namespace xover::test;
namespace spec = xover::virtio_net::spec;

namespace {

constexpr std::uint64_t kTxHalf = 0x300000;  // fake TX half in the sender rig's memory
constexpr std::uint64_t kRxHalf = 0x80000;   // fake RX half in the receiver's memory
constexpr std::size_t kHdr = sizeof(spec::net::Header);
constexpr std::uint64_t kLink = 7;

std::vector<std::uint8_t> frame_of(std::size_t n, std::uint8_t seed = 1) {
    std::vector<std::uint8_t> f(n);
    for (std::size_t i = 0; i < n; ++i) f[i] = std::uint8_t(seed + i * 7);
    return f;
}

std::vector<std::uint8_t> with_header(std::span<const std::uint8_t> frame, spec::net::Header hdr = {}) {
    std::vector<std::uint8_t> out(kHdr + frame.size());
    std::memcpy(out.data(), &hdr, kHdr);
    std::copy(frame.begin(), frame.end(), out.begin() + kHdr);
    return out;
}

// A virtio-net receiver's RX queue (8 entries) as a sender sees it: its
// RAM and its shared state page with the ring published.
struct WindowReceiver {
    FakeGuestMemory mem{1 << 20};
    crossover::SharedStatePage page = crossover::SharedStatePage::create("virtio-window-rx", 1);
    VirtqueueBuilder vq{mem, 0x1000, 8};

    WindowReceiver() { publish_virtio_rx(page.state(), vq, nic::kRxEventIdx); }
    // RX buffer k: one device-writable descriptor at RX-half slot k.
    void post(std::uint16_t k, std::uint32_t len = 2048) {
        vq.write_desc(k, kRxHalf + std::uint64_t(k) * 2048, len, spec::kDescWrite, 0);
        vq.publish(k);
    }
    std::uint64_t slot(std::uint16_t k) const { return kRxHalf + std::uint64_t(k) * 2048; }
};

// Places every frame whose buffer is TX-half slot `head` after a 12-byte
// header, into a receiver whose RX ring it keeps: RX buffer `head` is
// posted as the frame lands, and the loan recorded, as the port does. Lent
// heads complete through virtio-net's real TX view once the test gives
// their RX buffers back, as the port's complete_window_tx does.
struct FakeVirtioWindowPort final : FakeNicPort {
    explicit FakeVirtioWindowPort(vmm::GuestMemory& sender_memory)
        : FakeNicPort("virtio-window-test", 1), memory(sender_memory) {}
    vmm::GuestMemory& memory;
    WindowReceiver peer;
    std::unique_ptr<nic::TxView> view = virtio_net::make_tx_view();
    bool peer_present = true, peer_full = false;
    std::vector<std::uint16_t> placed;

    WindowSend send_in_window(std::uint32_t head, std::uint64_t gpa, std::uint32_t offset,
                              std::span<const std::uint8_t> frame) override {
        if (!peer_present || offset != kHdr || gpa != kTxHalf + std::uint64_t(head) * 2048 || frame.size() < 14)
            return WindowSend::NotApplicable;
        if (peer_full) return WindowSend::Busy;
        placed.push_back(std::uint16_t(head));
        peer.post(std::uint16_t(head));
        view->window_lend(page.state(), kLink, head, peer.vq.avail_idx(), peer.mem, peer.page.state());
        return WindowSend::Placed;
    }
    // The peer's guest makes RX buffer `head` available again.
    void give_back(std::uint16_t head) { peer.vq.publish(head); }
    nic::TxView::WindowCompletion complete_window_tx() override {
        nic::SharedNicState& own = page.state();
        if (!view->window_any(own)) return {};
        using Completer = nic::TxView::Completer;
        auto done = peer_present
                        ? view->complete_window(Completer::Sender, memory, own, &peer.mem, &peer.page.state())
                        : view->complete_window(Completer::Sender, memory, own, nullptr, nullptr);
        return done;
    }
    bool window_holds(std::uint16_t head) const override { return view->window_holds(page.state(), head); }
    // The writers' lock of our TX used ring (CrossoverPort::begin_tx_completion):
    // held by a peer's process while `writer_busy`.
    bool writer_busy = false;
    int completion_tries = 0;
    TxCompletion begin_tx_completion(std::uint32_t& used) override {
        ++completion_tries;
        if (writer_busy) return TxCompletion::Busy;
        used = nic::tx_handoff(page.state()).completion_pos.load();
        view->window_recover(page.state(), used);
        return TxCompletion::Shared;
    }
    void end_tx_completion(std::uint32_t used) override { nic::tx_handoff(page.state()).completion_pos.store(used); }
};

struct WindowSender {
    VirtioNetRig rig;
    FakeVirtioWindowPort port{rig.mem};
    explicit WindowSender(std::uint64_t features = VirtioNetRig::kFeatures) {
        rig.net.attach_crossover(port);
        rig.bring_up(features);
    }
    // TX chain `head`: one descriptor at TX-half slot `head` (or `at`).
    void post(std::uint16_t head, std::span<const std::uint8_t> frame, spec::net::Header hdr = {},
              std::uint64_t at = 0) {
        auto bytes = with_header(frame, hdr);
        std::uint64_t gpa = at ? at : kTxHalf + std::uint64_t(head) * 2048;
        rig.mem.poke(gpa, bytes.data(), bytes.size());
        rig.tx.write_desc(head, gpa, std::uint32_t(bytes.size()), 0, 0);
        rig.tx.publish(head);
    }
    std::vector<std::uint32_t> used_ids() {
        std::vector<std::uint32_t> ids;
        for (std::uint16_t i = 0; i < rig.tx.used_idx(); ++i) ids.push_back(rig.tx.used(i).id);
        return ids;
    }
};

constexpr std::uint64_t kNoEventIdx = VirtioNetRig::kFeatures & ~(1ull << spec::kFeatureEventIdx);

}  // namespace

TEST_CASE("virtio window: lent TX heads are used when the peer's guest returns their RX buffers", "[virtio][window]") {
    WindowSender s(kNoEventIdx);
    auto frame = frame_of(64);
    for (std::uint16_t k = 0; k < 3; ++k) s.post(k, frame);
    s.rig.tx.set_next_free(3);
    s.rig.tx.add({s.rig.tx.readable(with_header(frame))});  // head 3: outside the window, copied
    s.rig.queue_notify_tx();

    CHECK(s.port.placed == std::vector<std::uint16_t>{0, 1, 2});
    CHECK(s.port.copied == 1);
    CHECK(s.used_ids() == std::vector<std::uint32_t>{3});  // the lent heads are not done
    // The peer's guest is asked to notify at its next return.
    CHECK(s.port.peer.vq.avail_event() == s.port.peer.vq.avail_idx());
    CHECK(s.rig.counter("tx_window_frames") == 3);
    CHECK(s.rig.counter("tx_frames") == 4);

    unsigned irqs = s.rig.msi.count(1);
    s.port.give_back(1);  // out of order: the peer's guest returned RX buffer 1 first
    s.rig.net.resume_tx();  // what the doorbell does
    CHECK(s.used_ids() == std::vector<std::uint32_t>{3, 1});
    CHECK(s.rig.msi.count(1) == irqs + 1);  // the TX queue's vector

    s.port.give_back(1);  // again, and one never lent: both ignored
    s.port.give_back(7);
    s.rig.net.resume_tx();
    CHECK(s.rig.tx.used_idx() == 2);

    s.port.peer_present = false;  // link down: everything comes back
    s.rig.net.resume_tx();
    auto ids = s.used_ids();
    REQUIRE(ids.size() == 4);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::uint32_t>{0, 1, 2, 3});
    CHECK(s.rig.counter("tx_window_completed") == 3);
    CHECK(s.rig.counter("hostile") == 0);
}

TEST_CASE("virtio window: completions wait while the peer writes our used ring, then come from resume_tx",
          "[virtio][window]") {
    WindowSender s(kNoEventIdx);
    auto frame = frame_of(64);
    s.port.writer_busy = true;  // a live peer holds the writers' lock
    s.rig.tx.set_next_free(10);
    for (int i = 0; i < 3; ++i) s.rig.tx.add({s.rig.tx.readable(with_header(frame))});  // copied chains
    s.rig.queue_notify_tx();
    CHECK(s.port.copied == 3);
    CHECK(s.rig.tx.used_idx() == 0);        // never written behind the peer's back
    CHECK(s.port.completion_tries == 1);    // one try per pass, not one wait per chain
    CHECK(s.rig.counter("tx_completions_put_off") == 3);

    s.rig.net.resume_tx();  // the retry timer, the peer still writing
    CHECK(s.rig.tx.used_idx() == 0);
    unsigned irqs = s.rig.msi.count(1);
    s.port.writer_busy = false;
    s.rig.net.resume_tx();
    CHECK(s.used_ids() == std::vector<std::uint32_t>{10, 11, 12});
    CHECK(s.rig.msi.count(1) == irqs + 1);
    CHECK(s.port.copied == 3);  // sent once
}

TEST_CASE("virtio window: a full peer ring stops TX at that chain until the peer returns buffers", "[virtio][window]") {
    WindowSender s;
    auto frame = frame_of(100);
    s.port.peer_full = true;
    s.post(0, frame);
    s.post(1, frame);
    s.rig.queue_notify_tx();
    CHECK(s.port.placed.empty());
    CHECK(s.port.copied == 0);  // lossless: not copied, not dropped
    CHECK(s.rig.tx.used_idx() == 0);
    CHECK(s.rig.counter("tx_busy") == 1);

    s.rig.queue_notify_tx();  // a notify while stalled does not retry (the doorbell will)
    CHECK(s.port.placed.empty());

    s.port.peer_full = false;
    s.rig.net.resume_tx();
    CHECK(s.port.placed == std::vector<std::uint16_t>{0, 1});
    s.port.give_back(0);
    s.port.give_back(1);
    s.rig.net.resume_tx();
    CHECK(s.used_ids() == std::vector<std::uint32_t>{0, 1});
}

TEST_CASE("virtio window: chains that cannot go in place take the normal path", "[virtio][window]") {
    WindowSender s;
    auto frame = frame_of(80);
    spec::net::Header csum{};
    csum.flags = spec::net::kHeaderNeedsCsum;  // we would have to edit the frame
    csum.csum_start = 14;
    csum.csum_offset = 16;
    s.post(0, frame, csum);
    s.post(1, frame, {}, kTxHalf + 5 * 2048);  // not at its own slot
    // Head 2: header and frame in two descriptors, both in slot 2.
    auto bytes = with_header(frame);
    s.rig.mem.poke(kTxHalf + 2 * 2048, bytes.data(), bytes.size());
    s.rig.tx.write_desc(2, kTxHalf + 2 * 2048, kHdr, spec::kDescNext, 3);
    s.rig.tx.write_desc(3, kTxHalf + 2 * 2048 + kHdr, std::uint32_t(frame.size()), 0, 0);
    s.rig.tx.publish(2);
    s.rig.queue_notify_tx();
    CHECK(s.port.placed.empty());
    CHECK(s.port.copied == 3);
    CHECK(s.used_ids() == std::vector<std::uint32_t>{0, 1, 2});
    CHECK(s.rig.counter("tx_window_frames") == 0);
}

TEST_CASE("virtio window: a head reused while lent goes the normal way and counts as hostile", "[virtio][window]") {
    WindowSender s;
    auto frame = frame_of(64);
    s.post(0, frame);
    s.rig.queue_notify_tx();
    REQUIRE(s.port.placed.size() == 1);
    s.post(0, frame);  // the driver bug: head 0 is still the device's
    s.rig.queue_notify_tx();
    CHECK(s.port.placed.size() == 1);
    CHECK(s.port.copied == 1);
    CHECK(s.rig.counter("tx_window_head_reused") == 1);
    CHECK(s.rig.counter("hostile") == 1);
    CHECK(!s.rig.needs_reset());
}

// ------------------------------------------------------------ RX view


TEST_CASE("virtio window: the RX view places only the chain that is the sender's slot", "[virtio][window]") {
    WindowReceiver r;
    for (std::uint16_t k = 0; k < 4; ++k) r.post(k);
    auto w = virtio_net::make_rx_view();
    REQUIRE(w->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
    CHECK(w->window_frame_offset() == kHdr);
    using St = nic::RxView::Status;

    REQUIRE(w->place(0, r.slot(0), 64) == St::Written);
    CHECK(r.vq.used_idx() == 1);
    CHECK(r.vq.used(0).id == 0);
    CHECK(r.vq.used(0).len == kHdr + 64);
    auto hdr = r.mem.at<spec::net::Header>(r.slot(0));
    CHECK(hdr.num_buffers == 1);
    CHECK(hdr.flags == 0);
    CHECK(w->position() == 1);

    // Anything else leaves the chain for the copy path.
    CHECK(w->place(2, r.slot(2), 64) == St::Bad);                // not the next head
    CHECK(w->place(1, r.slot(1) + 16, 64) == St::Bad);           // not its buffer
    CHECK(w->place(1, r.slot(1), 2048 - kHdr + 1) == St::Bad);   // does not fit
    CHECK(r.vq.used_idx() == 1);
    CHECK(w->position() == 1);

    CHECK(w->place(1, r.slot(1), 2048 - kHdr) == St::Written);
    CHECK(w->place(2, r.slot(2), 60) == St::Written);
    CHECK(w->place(3, r.slot(3), 60) == St::Written);
    CHECK(w->place(4, r.slot(4), 60) == St::Full);  // ring empty: wait for the peer
    w->finish();
    CHECK(r.page.state().load_rdh() == 4);
}

TEST_CASE("virtio RX view: a producer that died before publishing its position is not written over",
          "[virtio][window][hostile]") {
    WindowReceiver r;
    for (std::uint16_t k = 0; k < 6; ++k) r.post(k);
    using St = nic::RxView::Status;
    auto frame = frame_of(60);
    {
        // Killed while holding the ring: two frames used, rdh never published.
        auto dying = virtio_net::make_rx_view();
        REQUIRE(dying->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        REQUIRE(dying->write(frame) == St::Written);
        REQUIRE(dying->write(frame) == St::Written);
    }
    REQUIRE(r.vq.used_idx() == 2);
    REQUIRE(r.page.state().load_rdh() == 0);

    auto next = virtio_net::make_rx_view();
    SECTION("the next producer continues after what the guest can already see") {
        REQUIRE(next->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(next->position() == 2);
        REQUIRE(next->write(frame) == St::Written);
        next->finish();
        CHECK(r.vq.used_idx() == 3);
        CHECK(r.vq.used(0).id == 0);
        CHECK(r.vq.used(1).id == 1);
        CHECK(r.vq.used(2).id == 2);
        CHECK(r.page.state().load_rdh() == 3);
    }
    SECTION("a used index past the guest's avail index is not believed") {
        std::uint16_t wild = 7;  // avail idx is 6
        r.mem.poke(r.vq.layout().used + 2, &wild, 2);
        REQUIRE(next->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(next->position() == 0);
        next->finish();
    }
    SECTION("a used index more than a ring ahead is not believed") {
        r.page.state().publish_rdh(2);
        std::uint16_t wild = 2 + 9;
        r.vq.set_avail_idx(2 + 12);
        r.mem.poke(r.vq.layout().used + 2, &wild, 2);
        REQUIRE(next->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(next->position() == 2);
        next->finish();
    }
}

TEST_CASE("virtio window: hostile RX chains are never placed", "[virtio][window]") {
    WindowReceiver r;
    auto w = virtio_net::make_rx_view();
    using St = nic::RxView::Status;

    SECTION("two descriptors") {
        r.vq.write_desc(0, r.slot(0), kHdr, spec::kDescWrite | spec::kDescNext, 1);
        r.vq.write_desc(1, r.slot(0) + kHdr, 2000, spec::kDescWrite, 0);
        r.vq.publish(0);
        REQUIRE(w->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(w->place(0, r.slot(0), 64) == St::Bad);
    }
    SECTION("device-readable buffer") {
        r.vq.write_desc(0, r.slot(0), 2048, 0, 0);
        r.vq.publish(0);
        REQUIRE(w->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(w->place(0, r.slot(0), 64) == St::Bad);
    }
    SECTION("head id out of range") {
        r.vq.publish(100);
        REQUIRE(w->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(w->place(100, r.slot(0), 64) == St::Bad);
    }
    SECTION("buffer outside the peer's memory") {
        r.vq.write_desc(0, 0xfffff000, 2048, spec::kDescWrite, 0);
        r.vq.publish(0);
        REQUIRE(w->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        CHECK(w->place(0, 0xfffff000, 64) == St::Bad);
    }
    CHECK(r.vq.used_idx() == 0);
    w->finish();
}

// ---------------------------------------------------------- WindowLoans

TEST_CASE("virtio window: a lent head is back once its RX buffer is made available again", "[virtio][window]") {
    WindowReceiver r;
    nic::WindowLoanLedger ledger;
    ledger.clear();
    virtio_net::WindowLoans loans(ledger);
    std::array<std::uint16_t, 8> out{};
    auto reclaim = [&] {
        loans.look(r.mem, r.page.state());
        std::size_t n = loans.take_back_taken(out);
        loans.settle_taken();
        return std::vector<std::uint16_t>(out.begin(), out.begin() + std::ptrdiff_t(n));
    };
    for (std::uint16_t k = 0; k < 8; ++k) r.post(k);  // positions 0..7 hold heads 0..7

    loans.lend(kLink, 0, 1, r.mem, r.page.state());  // head 0 consumed at position 0
    loans.lend(kLink, 3, 4, r.mem, r.page.state());  // position 3 held head 3 before it was lent: not a return
    CHECK(loans.outstanding() == 2);
    CHECK(reclaim().empty());  // positions 4..7 hold heads 4..7

    r.vq.publish(5);
    CHECK(reclaim().empty());
    r.vq.publish(3);  // position 9
    CHECK(reclaim() == std::vector<std::uint16_t>{3});
    r.vq.publish(0);
    CHECK(reclaim() == std::vector<std::uint16_t>{0});
    CHECK(loans.outstanding() == 0);

    SECTION("head ids out of range are ignored") {
        loans.lend(kLink, 2000, 11, r.mem, r.page.state());
        CHECK(loans.outstanding() == 0);
    }
    SECTION("a wild avail idx is walked at most one ring's worth") {
        loans.lend(kLink, 1, 11, r.mem, r.page.state());
        r.vq.set_avail_idx(std::uint16_t(r.vq.avail_idx() + 30000));
        CHECK(reclaim().empty());  // the ring holds no head 1
        r.vq.set_avail_idx(std::uint16_t(r.vq.avail_idx() - 30010));  // and back, behind the cursor
        CHECK(reclaim().empty());
        CHECK(loans.outstanding() == 1);
    }
    SECTION("the peer's RX queue going away returns every loan") {
        loans.lend(kLink, 1, 11, r.mem, r.page.state());
        loans.lend(kLink, 2, 12, r.mem, r.page.state());
        r.page.state().link_flags.fetch_and(~std::uint32_t(nic::kOwnerRxEnabled));
        auto back = reclaim();
        std::sort(back.begin(), back.end());
        CHECK(back == std::vector<std::uint16_t>{1, 2});
    }
    SECTION("a stale return of a head does not complete its new loan") {
        loans.lend(kLink, 1, 11, r.mem, r.page.state());
        r.vq.publish(1);  // position 11: returned, not yet reclaimed (the sender reset meanwhile)
        loans.lend(kLink, 1, 12, r.mem, r.page.state());  // and lent again from position 11
        CHECK(reclaim().empty());
        CHECK(loans.outstanding() == 1);
    }
    SECTION("arming asks the peer's guest to notify at its next post") {
        loans.lend(kLink, 1, 11, r.mem, r.page.state());
        loans.arm(r.mem, r.page.state());
        CHECK(r.vq.avail_event() == r.vq.avail_idx());
    }
}

TEST_CASE("virtio window: returns that do not fit come on the next call", "[virtio][window]") {
    WindowReceiver r;
    nic::WindowLoanLedger ledger;
    ledger.clear();
    virtio_net::WindowLoans loans(ledger);
    for (std::uint16_t k = 0; k < 8; ++k) r.post(k);
    for (std::uint16_t k = 0; k < 4; ++k) loans.lend(kLink, k, std::uint16_t(k + 1), r.mem, r.page.state());
    for (std::uint16_t k = 0; k < 4; ++k) r.vq.publish(k);
    std::array<std::uint16_t, 3> out{};
    loans.look(r.mem, r.page.state());
    CHECK(loans.take_back_taken(out) == 3);
    CHECK(loans.take_back_taken(out) == 1);
    CHECK(out[0] == 3);
    loans.settle_taken();
    CHECK(loans.outstanding() == 0);
}

namespace {
// A virtio window link's two pages: the receiver (its RX ring, 8 buffers
// posted) and the sender (its TX ring of 8, published in its page's
// handoff; it completed one chain itself before).
struct LoanPair {
    WindowReceiver r;
    FakeGuestMemory smem{1 << 20};
    VirtqueueBuilder tx{smem, 0x2000, 8};
    crossover::SharedStatePage spage = crossover::SharedStatePage::create("virtio-window-tx", 1);
    nic::SharedNicState& sender = spage.state();
    nic::TxHandoff& h = nic::tx_handoff(sender);
    std::unique_ptr<nic::TxView> view = virtio_net::make_tx_view();
    LoanPair() {
        h.queue.kind.store(std::uint32_t(nic::TxQueueKind::VirtioSplit));
        h.queue.entries.store(8);
        h.queue.ring_gpa.store(tx.layout().desc);
        h.queue.avail_gpa.store(tx.layout().avail);
        h.queue.used_gpa.store(tx.layout().used);
        h.completion_pos.store(1);
        for (std::uint16_t k = 0; k < 8; ++k) r.post(k);
    }
};
}  // namespace

TEST_CASE("virtio window: the receiver's process completes returned heads in the sender's TX ring",
          "[virtio][window]") {
    LoanPair p;
    WindowReceiver& r = p.r;
    VirtqueueBuilder& tx = p.tx;
    nic::SharedNicState& sender = p.sender;
    nic::TxHandoff& h = p.h;
    FakeGuestMemory& smem = p.smem;
    auto& view = p.view;
    // The sender lends heads 2 and 5 (consumed at positions 2 and 5).
    view->window_lend(sender, kLink, 2, 3, r.mem, r.page.state());
    view->window_lend(sender, kLink, 5, 6, r.mem, r.page.state());
    CHECK(view->window_lent(sender, kLink));
    CHECK_FALSE(view->window_lent(sender, kLink + 1));  // lent over another link
    CHECK(view->window_holds(sender, 5));
    CHECK_FALSE(view->window_holds(sender, 4));

    r.vq.publish(5);  // the receiver's guest returns RX buffer 5
    using Completer = nic::TxView::Completer;
    auto done = view->complete_window(Completer::Receiver, smem, sender, &r.mem, &r.page.state());
    CHECK(done.completed == 1);
    CHECK_FALSE(done.unreachable);
    CHECK(tx.used_idx() == 2);  // continued at the shared position
    CHECK(tx.used(1).id == 5);
    CHECK(h.completion_pos.load() == 2);
    CHECK(sender.virtio_net.window_loans.completed_by_peer.load() == 1);
    CHECK_FALSE(view->window_holds(sender, 5));
    CHECK(view->window_holds(sender, 2));
    // Head 2 is still out: the receiver's guest is asked to notify at its
    // next return (the sender may be waiting for it without an exit).
    CHECK(r.vq.avail_event() == r.vq.avail_idx());

    SECTION("the sender's writers hold the lock: the sender completes them itself") {
        REQUIRE(h.try_lock());
        r.vq.publish(2);
        CHECK(view->complete_window(Completer::Receiver, smem, sender, &r.mem, &r.page.state()).busy);
        h.unlock();
        auto own = view->complete_window(Completer::Sender, smem, sender, &r.mem, &r.page.state());
        CHECK(own.completed == 1);
        CHECK(tx.used_idx() == 3);
        CHECK(tx.used(2).id == 2);
        CHECK(h.completion_pos.load() == 3);
        CHECK(sender.virtio_net.window_loans.completed_by_peer.load() == 1);  // the sender's own
        CHECK_FALSE(view->window_any(sender));
    }
    SECTION("the link gone: the sender completes every loan") {
        auto own = view->complete_window(Completer::Sender, smem, sender, nullptr, nullptr);
        CHECK(own.completed == 1);
        CHECK(tx.used(2).id == 2);
        CHECK_FALSE(view->window_any(sender));
    }
    SECTION("a reset of the sender's TX queue forgets every loan") {
        view->window_forget(sender);
        r.vq.publish(2);
        CHECK(view->complete_window(Completer::Receiver, smem, sender, &r.mem, &r.page.state()).completed == 0);
        CHECK(tx.used_idx() == 2);
    }
    SECTION("no usable TX queue: nothing is written") {
        h.queue.kind.store(std::uint32_t(nic::TxQueueKind::None));
        r.vq.publish(2);
        CHECK(view->complete_window(Completer::Receiver, smem, sender, &r.mem, &r.page.state()).unreachable);
        CHECK(view->complete_window(Completer::Sender, smem, sender, &r.mem, &r.page.state()).unreachable);
        CHECK(tx.used_idx() == 2);
        CHECK(view->window_holds(sender, 2));  // kept until the queue is usable again
    }
}

TEST_CASE("virtio window: heads a completer took when it was killed are completed once", "[virtio][window][hostile]") {
    LoanPair p;
    p.view->window_lend(p.sender, kLink, 2, 3, p.r.mem, p.r.page.state());
    p.view->window_lend(p.sender, kLink, 5, 6, p.r.mem, p.r.page.state());
    p.r.vq.publish(5);
    p.r.vq.publish(2);
    // The receiver's process took both to complete them, and was killed.
    virtio_net::WindowLoans dead(p.sender.virtio_net.window_loans);
    dead.look(p.r.mem, p.r.page.state());
    std::array<std::uint16_t, 8> out{};
    REQUIRE(dead.take_back_taken(out) == 2);
    // Not held: a live completer publishes taken heads before it settles
    // them, and the guest may send from one at once (example_configs once
    // saw such a head called reused, and copied). Still outstanding.
    CHECK_FALSE(p.view->window_holds(p.sender, 2));
    CHECK(p.view->window_any(p.sender));
    auto used_ids = [&] {
        std::vector<std::uint32_t> ids;
        for (std::uint16_t i = 1; i < p.tx.used_idx(); ++i) ids.push_back(p.tx.used(i).id);
        std::sort(ids.begin(), ids.end());
        return ids;
    };

    using Completer = nic::TxView::Completer;
    SECTION("before it published them: the next completer does") {
        CHECK(p.view->complete_window(Completer::Receiver, p.smem, p.sender, &p.r.mem, &p.r.page.state()).completed ==
              2);
        CHECK(used_ids() == std::vector<std::uint32_t>{2, 5});
        CHECK_FALSE(p.view->window_any(p.sender));
    }
    SECTION("before it published them: the sender does, its peer gone") {
        CHECK(p.view->complete_window(Completer::Sender, p.smem, p.sender, nullptr, nullptr).completed == 2);
        CHECK(used_ids() == std::vector<std::uint32_t>{2, 5});
        CHECK_FALSE(p.view->window_any(p.sender));
    }
    SECTION("after it published them: nobody completes them again") {
        dead.will_publish_at(3);
        p.h.completion_pos.store(3);  // what its finish() stored
        CHECK(p.view->complete_window(Completer::Receiver, p.smem, p.sender, &p.r.mem, &p.r.page.state()).completed ==
              0);
        CHECK(p.view->complete_window(Completer::Sender, p.smem, p.sender, nullptr, nullptr).completed == 0);
        CHECK(used_ids().empty());
        CHECK_FALSE(p.view->window_any(p.sender));
    }
    SECTION("the sender's own completions settle them first") {
        p.view->window_recover(p.sender, 1);  // begin_tx_completion, at the position it found
        CHECK(p.view->window_holds(p.sender, 2));
        CHECK(p.view->complete_window(Completer::Sender, p.smem, p.sender, &p.r.mem, &p.r.page.state()).completed ==
              2);
        CHECK(used_ids() == std::vector<std::uint32_t>{2, 5});
    }
}

namespace {
// Records where each frame it is handed lives.
struct WhereFramesLivePort final : FakeNicPort {
    WhereFramesLivePort() : FakeNicPort("virtio-read-once-test", 1) {}
    std::vector<const std::uint8_t*> seen;
    std::vector<std::vector<std::uint8_t>> bytes;
    net::Backend::SendResult send(std::span<const std::uint8_t> frame) override {
        seen.push_back(frame.data());
        bytes.emplace_back(frame.begin(), frame.end());
        return FakeNicPort::send(frame);
    }
};
}  // namespace

TEST_CASE("virtio crossover: a frame in one guest buffer reaches the port as a copy, read once", "[virtio][hostile]") {
    VirtioNetRig rig;
    WhereFramesLivePort port;
    rig.net.attach_crossover(port);
    rig.bring_up(VirtioNetRig::kFeatures);
    auto frame = frame_of(64);
    rig.tx.add({rig.tx.readable(with_header(frame))});  // header and frame in one buffer
    rig.queue_notify_tx();
    REQUIRE(port.seen.size() == 1);
    // Not a view of guest memory, which the guest could change while the
    // port classifies, filters and copies it.
    const std::uint8_t* guest = rig.mem.bytes.data();
    CHECK((port.seen[0] < guest || port.seen[0] >= guest + rig.mem.bytes.size()));
    CHECK(port.bytes[0] == frame);
}
