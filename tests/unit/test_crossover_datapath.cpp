// The crossover copy-mode data path in one process: a sending e1000 whose
// CrossoverPort writes into a peer's RX ring through a PeerLink over fake
// memory — an e1000 peer (its real register logic, with its own port) and
// a virtio-net RX queue (driven by VirtqueueBuilder).
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "crossover_fakes.hpp"
#include "crossover_sender.hpp"
#include "virtqueue_builder.hpp"
#include "xover/virtio_net/virtio_spec.hpp"

using namespace xover;
using namespace xover::test;

namespace {

const net::MacAddress kPeerE1000{{0x52, 0x54, 0x00, 0x77, 0x00, 0x01}};
const net::MacAddress kPeerVirtio{{0x52, 0x54, 0x00, 0x77, 0x00, 0x02}};

// A lock word naming a live process other than ours (our parent): never
// recovered, never ours.
std::uint64_t live_holder_token() { return (std::uint64_t(std::uint32_t(::getppid())) << 32) | 0x77; }

}  // namespace

TEST_CASE("crossover: e1000 -> e1000 copies frames into the peer's ring, one interrupt per batch") {
    Sender a;
    E1000Receiver b{kPeerE1000};  // the MAC the link is made for: its RAL0
    RxRing rx(b, 8);  // RDT = 7: 7 free descriptors
    b.wr(e1000::reg::IMS, e1000::icr::RXT0);
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeerE1000, "e1000", b.memory, b.port.page(), irq));

    auto frame = ethernet(kPeerE1000, kNicMac, 0x0800, 100);
    for (int i = 0; i < 3; ++i) a.tx.legacy(frame);
    a.tx.kick();

    CHECK(b.rd(e1000::reg::RDH) == 3);  // the owner reads the producer's RDH
    for (int i = 0; i < 3; ++i) {
        CHECK((rx.status(i) & (e1000::rxd::STA_DD | e1000::rxd::STA_EOP)) == (e1000::rxd::STA_DD | e1000::rxd::STA_EOP));
        CHECK(rx.frame(i) == frame);  // SECRC: no FCS
    }
    CHECK(drain(irq) == 1);  // one interrupt for the batch
    CHECK((b.rd(e1000::reg::ICR) & e1000::icr::RXT0) != 0);
    CHECK(a.counter("xover_tx_frames") == 3);
    CHECK(a.counter("xover_bytes_copied") == 3 * frame.size());
    CHECK(a.rig.backend.sent.empty());
    ::close(irq);
}

TEST_CASE("crossover: a receiver's rx_frames count what peers delivered, shown apart as xover_rx_frames") {
    Sender a;
    E1000Receiver b{kPeerE1000};
    RxRing rx(b, 8);
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeerE1000, "e1000", b.memory, b.port.page(), irq));
    CHECK(b.counter("rx_frames") == 0);

    auto frame = ethernet(kPeerE1000, kNicMac, 0x0800, 100);
    for (int i = 0; i < 3; ++i) a.tx.legacy(frame);
    a.tx.kick();  // written by the sender's process: b's process ran no code
    auto from_backend = ethernet(kPeerE1000, kNicMac, 0x0800, 60);
    CHECK(b.nic.deliver(from_backend));
    CHECK(b.rd(e1000::reg::RDH) == 4);

    CHECK(b.counter("rx_frames") == 4);
    CHECK(b.counter("rx_bytes") == 3 * frame.size() + from_backend.size());
    CHECK(b.counter("xover_rx_frames") == 3);
    CHECK(b.counter("xover_rx_bytes") == 3 * frame.size());
    CHECK(a.counter("xover_tx_bytes") == b.counter("xover_rx_bytes"));
    CHECK(a.counter("rx_frames") == 0);  // the sender received nothing
    CHECK(a.counter("xover_rx_frames") == 0);

    // A later link in the same producer slot adds on: the counts never go back.
    a.rig.nic.run_locked([&] { a.port.remove_link(1); });
    a.add(make_link(2, kPeerE1000, "e1000", b.memory, b.port.page(), irq));
    a.tx.legacy(frame);
    a.tx.kick();
    CHECK(b.counter("xover_rx_frames") == 4);
    CHECK(b.counter("rx_frames") == 5);
    ::close(irq);
}

TEST_CASE("crossover: a full e1000 peer ring parks the frames, the peer's process moves and completes them") {
    Sender a;
    E1000Receiver b{kPeerE1000};  // the MAC the link is made for: its RAL0
    RxRing rx(b, 8);
    b.wr(e1000::reg::RDT, 2);  // two free descriptors
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int doorbell = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    auto to_b = make_link(1, kPeerE1000, "e1000", b.memory, b.port.page(), irq);
    a.add(to_b);
    // b knows a as its peer too (links are symmetric): its doorbell is a's.
    auto to_a = make_link(1, kNicMac, "e1000", a.rig.memory, a.port.page(), irq);  // one link, one id on both sides
    to_a->peer_doorbell = kvm::UniqueFd(::dup(doorbell));
    b.nic.run_locked([&] { REQUIRE(b.port.add_link(to_a)); });

    auto frame = ethernet(kPeerE1000, kNicMac, 0x0800, 50);
    for (int i = 0; i < 4; ++i) a.tx.legacy(frame);
    a.tx.kick();
    CHECK(b.rd(e1000::reg::RDH) == 2);
    CHECK(a.rig.rd(e1000::reg::TDH) == 4);  // fetched, as the NIC's prefetch would
    CHECK((a.tx.status(1) & e1000::txd::STA_DD) != 0);
    CHECK((a.tx.status(2) & e1000::txd::STA_DD) == 0);  // parked: not complete yet
    CHECK((a.tx.status(3) & e1000::txd::STA_DD) == 0);
    CHECK(a.counter("xover_handoff_parked") == 2);
    CHECK(a.counter("xover_busy_peer_full") == 0);
    CHECK(b.port.shared().producer_waiting.load() == 0);  // no doorbell asked for

    SECTION("the peer's guest returns buffers: its process moves and completes them, no doorbell") {
        a.rig.wr(e1000::reg::IMS, e1000::icr::TXDW);
        drain(irq);
        b.wr(e1000::reg::RDT, 7);
        CHECK(drain(doorbell) == 0);  // the sender's process is not woken
        CHECK(drain(irq) == 1);       // TXDW: b's process wrote a's irqfd
        CHECK((a.rig.rd(e1000::reg::ICR) & e1000::icr::TXDW) != 0);
        CHECK(b.rd(e1000::reg::RDH) == 4);
        CHECK(rx.frame(3) == frame);
        CHECK((a.tx.status(2) & e1000::txd::STA_DD) != 0);  // completed by b's process
        CHECK((a.tx.status(3) & e1000::txd::STA_DD) != 0);
        CHECK(b.counter("xover_handoff_moved_for_peers") == 2);
        CHECK(a.counter("xover_handoff_moved_by_peer") == 2);
        CHECK(a.counter("xover_tx_frames") == 4);
        // 2 the sender's process wrote, 2 b's own process moved in.
        CHECK(b.counter("xover_rx_frames") == 4);
        CHECK(b.counter("xover_rx_bytes") == 4 * frame.size());
        CHECK(b.counter("rx_frames") == 4);
        // The run ends at the sender's next walk; new frames go straight in.
        a.tx.legacy(frame);
        a.tx.kick();
        CHECK(b.rd(e1000::reg::RDH) == 5);
        CHECK((a.tx.status(4) & e1000::txd::STA_DD) != 0);
        CHECK(a.counter("xover_handoff_parked") == 2);
    }
    SECTION("the sender's TX ring is out of the peer's reach: the peer leaves them to the sender") {
        to_a->peer_memory = crossover::PeerGuestMemory();  // the link shares none of a's memory
        b.wr(e1000::reg::RDT, 7);
        CHECK(b.rd(e1000::reg::RDH) == 2);                  // none moved: no completion would be written
        CHECK(b.counter("xover_handoff_unreachable") == 1);
        CHECK(drain(doorbell) == 1);                        // the sender is asked to move them
        CHECK(a.counter("xover_handoff_parked") == 2);
        CHECK((a.tx.status(2) & e1000::txd::STA_DD) == 0);
        a.rig.nic.doorbell_rang();  // its doorbell: a TX walk, whose batch end moves them
        CHECK(b.rd(e1000::reg::RDH) == 4);
        CHECK(rx.frame(3) == frame);
        CHECK(a.counter("xover_handoff_moved_self") == 2);
        CHECK((a.tx.status(2) & e1000::txd::STA_DD) != 0);
        CHECK((a.tx.status(3) & e1000::txd::STA_DD) != 0);
    }
    SECTION("the sender moves parked frames itself when it is awake first") {
        b.port.shared().publish_rdt(7);  // room, but b's process has not looked yet
        a.tx.legacy(frame);
        a.tx.kick();  // parked behind the others, then all moved at the end of the batch
        CHECK(b.rd(e1000::reg::RDH) == 5);
        CHECK(a.counter("xover_handoff_moved_self") == 3);
        CHECK(b.counter("xover_rx_frames") == 5);  // every one by the sender's process
        CHECK(b.counter("rx_frames") == 5);
        for (std::uint32_t i = 2; i < 5; ++i) CHECK((a.tx.status(i) & e1000::txd::STA_DD) != 0);
        CHECK(drain(doorbell) == 0);
    }
    SECTION("the sender's guest rewrites its TX ring while the peer moves them: none completes in the new ring") {
        nic::OwnedLock& mover = nic::tx_handoff(a.port.shared()).lock;
        mover.word.store(live_holder_token());  // the peer's process, in the middle of moving
        a.rig.wr(e1000::reg::TDLEN, 8 * 16);   // a new ring (same place): never waits for the mover
        CHECK(a.counter("xover_handoff_abandoned_in_flight") == 1);
        CHECK(mover.holder() == live_holder_token());  // not taken from it
        mover.word.store(0);                          // its batch ends
        b.wr(e1000::reg::RDT, 7);                     // the peer moves them: frames in flight
        CHECK(b.rd(e1000::reg::RDH) == 4);
        CHECK((a.tx.status(2) & e1000::txd::STA_DD) == 0);  // tokens of the old ring: not completed
        CHECK((a.tx.status(3) & e1000::txd::STA_DD) == 0);
        CHECK(a.counter("xover_handoff_parked") == 2);
    }
    SECTION("the peer goes while moving them: the sender completes them later, never waiting") {
        nic::OwnedLock& mover = nic::tx_handoff(a.port.shared()).lock;
        mover.word.store(live_holder_token());
        a.rig.nic.run_locked([&] { a.port.remove_link(1); });  // link down, mover still alive
        CHECK((a.tx.status(2) & e1000::txd::STA_DD) == 0);        // put off, not waited for
        mover.word.store(0);
        a.rig.nic.resume_tx();  // the retry timer: the next TX walk completes them (dropped)
        CHECK((a.tx.status(2) & e1000::txd::STA_DD) != 0);
        CHECK((a.tx.status(3) & e1000::txd::STA_DD) != 0);
        CHECK(a.counter("xover_handoff_dropped") == 2);
    }
    ::close(irq);
    ::close(doorbell);
}

TEST_CASE("crossover: the TX handoff keeps order, and a frame for another destination waits for the run") {
    Sender a;
    E1000Receiver b{kPeerE1000};
    RxRing rx(b, 8);
    b.wr(e1000::reg::RDT, 1);  // one free descriptor
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int doorbell = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeerE1000, "e1000", b.memory, b.port.page(), irq));
    auto to_a = make_link(1, kNicMac, "e1000", a.rig.memory, a.port.page(), irq);  // one link, one id on both sides
    to_a->peer_doorbell = kvm::UniqueFd(::dup(doorbell));
    b.nic.run_locked([&] { REQUIRE(b.port.add_link(to_a)); });

    Bytes first = ethernet(kPeerE1000, kNicMac, 0x0800, 60), second = ethernet(kPeerE1000, kNicMac, 0x0800, 61);
    Bytes third = ethernet(kPeerE1000, kNicMac, 0x0800, 62);
    Bytes elsewhere = ethernet(net::MacAddress{{0x52, 0x54, 0x00, 0x99, 0, 1}}, kNicMac, 0x0800, 63);
    a.tx.legacy(first);
    a.tx.legacy(second);
    a.tx.legacy(elsewhere);  // to the backend: must wait until the run ends
    a.tx.legacy(third);
    a.tx.kick();
    CHECK(a.counter("xover_handoff_parked") == 1);
    CHECK(a.rig.backend.sent.empty());
    CHECK(a.counter("xover_handoff_backlog") >= 1);

    b.wr(e1000::reg::RDT, 7);  // b moves `second`; the run is empty: a's doorbell for its waiting frame
    CHECK(drain(doorbell) == 1);
    a.rig.nic.resume_tx();  // a's doorbell: the run ends, the rest goes in order
    REQUIRE(a.rig.backend.sent.size() == 1);
    CHECK(b.rd(e1000::reg::RDH) == 3);
    CHECK(rx.frame(0) == first);
    CHECK(rx.frame(1) == second);
    CHECK(rx.frame(2) == third);
    for (std::uint32_t i = 0; i < 4; ++i) CHECK((a.tx.status(i) & e1000::txd::STA_DD) != 0);
    ::close(irq);
    ::close(doorbell);
}

TEST_CASE("crossover: e1000 -> virtio-net writes header and frame into the peer's RX queue") {
    Sender a;
    FakeGuestMemory vmem(1 << 20);
    auto page = crossover::SharedStatePage::create("test-virtio-peer", 1);
    VirtqueueBuilder vq(vmem, 0x1000, 8);
    for (int i = 0; i < 4; ++i) vq.add({vq.writable(2048)});
    publish_virtio_rx(page.state(), vq, nic::kRxMergeable | nic::kRxEventIdx);
    page.state().virtio_net.peer_irq.set_route(nic::PeerInterrupt::Direct);  // the owner's RX vector, unmasked
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeerVirtio, "virtio-net", vmem, page, irq));

    auto frame = ethernet(kPeerVirtio, kNicMac, 0x0800, 200);
    a.tx.legacy(frame);
    a.tx.legacy(frame);
    a.tx.kick();

    REQUIRE(vq.used_idx() == 2);
    CHECK(page.state().load_rdh() == 2);
    auto used = vq.used(0);
    CHECK(used.len == 12 + frame.size());
    // The first buffer: virtio_net_hdr_v1 with num_buffers = 1, then the frame.
    std::uint64_t buffer = vmem.at<std::uint64_t>(vq.layout().desc + 16 * used.id);
    auto hdr = vmem.at<virtio_net::spec::net::Header>(buffer);
    CHECK(hdr.num_buffers == 1);
    CHECK(hdr.gso_type == virtio_net::spec::net::kGsoNone);
    Bytes got(frame.size());
    vmem.peek(buffer + 12, got.data(), got.size());
    CHECK(got == frame);
    CHECK(drain(irq) == 1);

    SECTION("a full queue: the frame is parked, notifications re-armed, no doorbell asked for") {
        for (int i = 0; i < 3; ++i) a.tx.legacy(frame);
        a.tx.kick();
        CHECK(vq.used_idx() == 4);
        CHECK(page.state().producer_waiting.load() == 0);
        CHECK(vq.avail_event() == 4);  // the owner's guest will notify
        CHECK(a.counter("xover_handoff_parked") == 1);
        vq.add({vq.writable(2048)});
        vq.add({vq.writable(2048)});
        a.tx.legacy(frame);
        a.tx.kick();  // the sender, awake again, moves the parked frame first
        CHECK(vq.used_idx() == 6);
        CHECK(a.counter("xover_handoff_moved_self") == 2);
        CHECK(a.counter("xover_tx_frames") == 6);
    }
    ::close(irq);
}

TEST_CASE("crossover: broadcast goes to the backend and every peer, unknown MACs to the backend") {
    Sender a;
    E1000Receiver b{kPeerE1000};  // the MAC the link is made for: its RAL0
    RxRing rx(b, 8);
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeerE1000, "e1000", b.memory, b.port.page(), irq));
    const net::MacAddress broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    const net::MacAddress stranger{{0x52, 0x54, 0x00, 0x99, 0x99, 0x99}};
    a.tx.legacy(ethernet(broadcast, kNicMac, 0x0806, 46));
    a.tx.legacy(ethernet(stranger, kNicMac, 0x0800, 46));
    a.tx.kick();
    CHECK(b.rd(e1000::reg::RDH) == 1);
    CHECK(a.rig.backend.sent.size() == 2);
    CHECK(a.counter("xover_tx_group_frames") == 1);

    SECTION("after link down, frames for the old peer take the backend") {
        a.rig.nic.run_locked([&] { CHECK(a.port.remove_link(1) != nullptr); });
        a.tx.legacy(ethernet(kPeerE1000, kNicMac, 0x0800, 46));
        a.tx.kick();
        CHECK(b.rd(e1000::reg::RDH) == 1);
        CHECK(a.rig.backend.sent.size() == 3);
        CHECK(a.counter("xover_links_torn_down") == 1);
    }
    ::close(irq);
}

TEST_CASE("crossover: a window link waits for the peer to map its window instead of dropping") {
    Sender a;
    E1000Receiver b{kPeerE1000};  // the MAC the link is made for: its RAL0
    // The peer's guest put its RX buffers in its DMA window, which is out
    // of our reach until the peer has moved it onto our element.
    RxRing rx(b, 8, e1000::rctl::BAM | e1000::rctl::SECRC, 2048, 0x20000, 0xc0000000);
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int doorbell = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    auto to_b = make_link(1, kPeerE1000, "e1000", b.memory, b.port.page(), irq);
    to_b->mode = crossover::LinkMode::Window;
    a.add(to_b);
    auto to_a = make_link(1, kNicMac, "e1000", a.rig.memory, a.port.page(), irq);
    to_a->peer_doorbell = kvm::UniqueFd(::dup(doorbell));
    b.nic.run_locked([&] { REQUIRE(b.port.add_link(to_a)); });

    a.tx.legacy(ethernet(kPeerE1000, kNicMac, 0x0800, 60));
    a.tx.kick();
    CHECK(a.rig.rd(e1000::reg::TDH) == 0);  // waits: not dropped
    CHECK(a.counter("xover_dropped_bad_descriptor") == 0);
    CHECK(a.counter("xover_window_map_waits") >= 1);
    CHECK(b.port.page().state().producer_waiting.load() == 1);

    // Linked before its guest placed the window BAR (a guest sizing its
    // BARs): the RX half is at 0 for now, so the frame still waits.
    b.port.page().state().window_rx_link.store(1);
    a.rig.nic.resume_tx();
    CHECK(a.counter("xover_dropped_bad_descriptor") == 0);
    CHECK(a.rig.rd(e1000::reg::TDH) == 0);

    // The peer maps its window, publishes that, and wakes its producers.
    b.port.page().state().window_rx_gpa.store(0xc0100000);  // its RX half, where its BAR is
    b.port.page().state().window_rx_link.store(1);
    b.port.rx_space_returned();
    CHECK(drain(doorbell) == 1);
    a.rig.nic.resume_tx();
    // Mapped and still unreachable (this test has no window): truly bad.
    CHECK(a.counter("xover_dropped_bad_descriptor") == 1);
    CHECK(a.rig.rd(e1000::reg::TDH) == 1);
    ::close(irq);
    ::close(doorbell);
}

TEST_CASE("crossover: a group frame waits once for a peer whose ring stays full; it then misses them at once "
          "until it receives again") {
    Sender a;
    a.port.set_group_peer_patience(std::chrono::milliseconds(20));
    const net::MacAddress mac_c{{0x52, 0x54, 0x00, 0x77, 0x00, 0x03}};
    E1000Receiver stuck{kPeerE1000}, fine{mac_c};
    RxRing stuck_rx(stuck, 8), fine_rx(fine, 8);
    stuck.wr(e1000::reg::RDT, 0);  // RDH = RDT: no free buffer
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeerE1000, "e1000", stuck.memory, stuck.port.page(), irq));  // peers_[0]: asked first
    a.add(make_link(2, mac_c, "e1000", fine.memory, fine.port.page(), irq));
    const net::MacAddress broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    auto frame = [&](std::uint8_t tag) {
        auto f = ethernet(broadcast, kNicMac, 0x0806, 46);
        f.back() = tag;  // each frame its own, not a retry of the last
        return f;
    };

    // The first frame waits for the full ring (the guest may be slow)...
    a.tx.legacy(frame(1));
    a.tx.kick();
    CHECK(a.rig.rd(e1000::reg::TDH) == 0);
    CHECK(a.counter("xover_group_retries") >= 1);
    CHECK(a.counter("xover_group_peer_timeouts") == 0);
    // ...for the whole patience; then that peer misses it, the others get it.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    a.rig.nic.resume_tx();
    CHECK(a.rig.rd(e1000::reg::TDH) == 1);
    CHECK(a.counter("xover_group_peer_timeouts") == 1);
    CHECK(fine.rd(e1000::reg::RDH) == 1);

    // Stalled: the next frames skip it at once, with no wait for anyone.
    a.tx.legacy(frame(2));
    a.tx.legacy(frame(3));
    a.tx.kick();
    CHECK(a.rig.rd(e1000::reg::TDH) == 3);
    CHECK(a.counter("xover_group_peer_stalled_skips") == 2);
    CHECK(a.counter("xover_dropped_group_peer_full") == 3);
    CHECK(fine.rd(e1000::reg::RDH) == 3);
    CHECK(stuck.rd(e1000::reg::RDH) == 0);

    // It returns buffers and takes the next frame: no longer stalled...
    stuck.wr(e1000::reg::RDT, 1);  // one free buffer
    a.tx.legacy(frame(4));
    a.tx.kick();
    CHECK(stuck.rd(e1000::reg::RDH) == 1);
    CHECK(fine.rd(e1000::reg::RDH) == 4);
    // ...so the next time its ring is full, a frame waits for it again.
    a.tx.legacy(frame(5));
    a.tx.kick();
    CHECK(a.rig.rd(e1000::reg::TDH) == 4);
    CHECK(a.counter("xover_group_peer_stalled_skips") == 2);
    ::close(irq);
}
