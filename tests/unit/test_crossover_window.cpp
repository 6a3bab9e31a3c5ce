// Window mode (zero copy), the parts that need no KVM: the e1000's
// deferred TX completion against a fake port (slots lent to the peer
// complete only when the peer's RDT passes them, or when the peer goes
// away), and RamMemory's extra regions (the window's guest-memory view).
#include <catch2/catch.hpp>

#include "crossover_fakes.hpp"
#include "e1000_ring_builder.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/e1000/window_tx_ledger.hpp"
#include "xover/nic/nic_port.hpp"
#include "xover/nic/tx_view.hpp"
#include "xover/vmm/ram_memory.hpp"

using namespace xover;
using namespace xover::test;

namespace {

constexpr std::uint64_t kTxHalf = 0x200000;  // fake TX half in the rig's memory

// Places every frame whose buffer is TX-half slot k (k = its descriptor);
// the peer's RDT/RDH (in its state page) are whatever the test says. Lent
// slots complete through the e1000's real TX view, as the port does it.
struct FakeWindowPort final : FakeNicPort {
    explicit FakeWindowPort(vmm::GuestMemory& sender_memory)
        : FakeNicPort("window-test", 0), memory(sender_memory) {}
    vmm::GuestMemory& memory;
    crossover::SharedStatePage peer = crossover::SharedStatePage::create("window-test-peer", 0);
    std::unique_ptr<nic::TxView> view = e1000::make_tx_view();
    bool peer_present = true;
    int placed = 0;

    void peer_rdt(std::uint32_t rdt) { peer.state().publish_rdt(rdt); }
    WindowSend send_in_window(std::uint32_t index, std::uint64_t gpa, std::uint32_t,
                              std::span<const std::uint8_t>) override {
        if (!peer_present || gpa != kTxHalf + std::uint64_t(index) * 2048) return WindowSend::NotApplicable;
        ++placed;
        peer.state().publish_rdh(index + 1);
        view->window_lend(page.state(), 7, index, 0, memory, peer.state());  // as the port records it
        return WindowSend::Placed;
    }
    nic::TxView::WindowCompletion complete_window_tx() override {
        nic::SharedNicState& own = page.state();
        if (!view->window_any(own)) return {};
        using Completer = nic::TxView::Completer;
        return peer_present ? view->complete_window(Completer::Sender, memory, own, &memory, &peer.state())
                            : view->complete_window(Completer::Sender, memory, own, nullptr, nullptr);
    }
};

}  // namespace

TEST_CASE("window: TX slots lent to the peer complete when its RDT passes them") {
    E1000Rig rig;
    FakeWindowPort port{rig.memory};
    rig.nic.attach_crossover(port);
    TxRing tx(rig, 16);
    auto frame = ethernet(kNicMac, kNicMac, 0x88b5, 64);
    for (std::uint32_t k = 0; k < 4; ++k) {
        rig.memory.poke(kTxHalf + k * 2048, frame.data(), frame.size());
        tx.legacy_raw(kTxHalf + k * 2048, std::uint16_t(frame.size()));
    }
    tx.legacy(frame);  // slot 4: its buffer is elsewhere, copied
    port.peer_rdt(15);  // the peer's guest holds nothing yet: RX [15, 0) is its
    tx.kick();
    CHECK(port.placed == 4);
    CHECK(port.copied == 1);
    for (std::uint32_t k = 0; k < 4; ++k) CHECK((tx.status(k) & e1000::txd::STA_DD) == 0);
    CHECK(rig.rd(e1000::reg::TDH) == 0);  // the lent slots are not done
    // TXDW needs no timer of ours: the peer's process completes the slots
    // on its RDT writes, so it is not asked for a doorbell.
    auto& ledger = port.page.state().e1000.window_tx;
    CHECK(port.peer.state().producer_waiting.load() == 0);
    CHECK(ledger.peer_may_complete.load() == 1);
    CHECK(e1000::window_tx::lent(ledger).done == 0);
    CHECK(e1000::window_tx::lent(ledger).end == 4);

    port.peer_rdt(2);  // the peer's guest returned RX 0 and 1
    rig.nic.resume_tx();
    CHECK((tx.status(0) & e1000::txd::STA_DD) != 0);
    CHECK((tx.status(1) & e1000::txd::STA_DD) != 0);
    CHECK((tx.status(2) & e1000::txd::STA_DD) == 0);
    CHECK(rig.rd(e1000::reg::TDH) == 2);

    port.peer_present = false;  // link down: everything comes back
    rig.nic.resume_tx();
    for (std::uint32_t k = 0; k < 5; ++k) CHECK((tx.status(k) & e1000::txd::STA_DD) != 0);
    CHECK(rig.rd(e1000::reg::TDH) == 5);
    CHECK(rig.counter("tx_window_frames") == 4);
    CHECK(rig.counter("tx_frames") == 5);
}

TEST_CASE("window: with TX interrupt delays on, the peer is asked to ring instead") {
    E1000Rig rig;
    rig.use_fake_timer();
    FakeWindowPort port{rig.memory};
    rig.nic.attach_crossover(port);
    rig.wr(e1000::reg::TIDV, 8);
    TxRing tx(rig, 16);
    auto frame = ethernet(kNicMac, kNicMac, 0x88b5, 64);
    rig.memory.poke(kTxHalf, frame.data(), frame.size());
    tx.legacy_raw(kTxHalf, std::uint16_t(frame.size()));
    port.peer_rdt(15);
    tx.kick();
    CHECK(port.placed == 1);
    CHECK(port.page.state().e1000.window_tx.peer_may_complete.load() == 0);
    CHECK(port.peer.state().producer_waiting.load() != 0);
}

TEST_CASE("window: frames from elsewhere never land in RX buffers the window peer's TX shares") {
    struct SharingPort final : FakeNicPort {
        SharingPort() : FakeNicPort("window-rx-test", 0) {}
        std::uint64_t shared_from = 0, shared_to = 0;
        bool shared_with_window_peer(std::uint64_t gpa, std::uint64_t length) const override {
            return gpa < shared_to && gpa + length > shared_from;
        }
    };
    E1000Rig rig;
    SharingPort port;
    rig.nic.attach_crossover(port);
    RxRing rx(rig, 8);  // buffers at 0x100000 + k*2048
    auto frame = ethernet(kNicMac, kPeerMac, 0x88b5, 64);
    port.shared_from = 0x100000 + 2048, port.shared_to = 0x100000 + 4 * 2048;  // buffers 1..3
    CHECK(rig.nic.deliver(frame));  // buffer 0: ours alone
    CHECK(rig.rd(e1000::reg::RDH) == 1);
    CHECK(rig.nic.deliver(frame));  // buffer 1 is shared: dropped, the ring untouched
    CHECK(rig.rd(e1000::reg::RDH) == 1);
    CHECK(rx.status(1) == 0);
    CHECK(rig.counter("rx_window_conflict") == 1);
    CHECK(rig.counter("rx_frames") == 1);
}

TEST_CASE("window: RamMemory translates extra regions and forgets removed ones") {
    vmm::RamMemory ram(4 << 20);
    std::vector<std::uint8_t> window(8192, 0);
    unsigned h = ram.add_region(0xc0200000, window.size(), window.data());
    auto s = ram.span(0xc0200000 + 100, 16);
    REQUIRE(s.size() == 16);
    CHECK(s.data() == window.data() + 100);
    CHECK(ram.span(0xc0200000 + 8190, 4).empty());  // crosses the end
    CHECK(ram.span(0x1000, 4).data() == ram.host_base() + 0x1000);
    ram.remove_region(h);
    CHECK(ram.span(0xc0200000, 4).empty());
}
