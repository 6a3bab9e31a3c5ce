// A crossover peer interrupting a virtio-net receiver must obey what the
// receiver's guest set up, as a real MSI-X device would: a masked vector
// (per vector or function mask) sends nothing and shows its PBA bit, an
// unmask delivers it once; without MSI-X the owner raises ISR + INTx.
// The sender is an e1000 with a CrossoverPort; the receiver a real
// VirtioNet with its own port, driven through its BAR like a guest.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "crossover_sender.hpp"
#include "virtio_fakes.hpp"

using namespace xover;
using namespace xover::test;
using Route = nic::PeerInterrupt::Route;

namespace {

const net::MacAddress kReceiverMac{{0x52, 0x54, 0x00, 0x77, 0x00, 0x02}};

// The virtio-net receiver: RX queue on `rx_vector` (1 is the vector whose
// eventfd peers hold), TX on 2, configuration changes on 0.
struct Receiver {
    // No event index: every batch asks for an interrupt.
    static constexpr std::uint64_t kFeatures = VirtioNetRig::kFeatures & ~(1ull << virtio_net::spec::kFeatureEventIdx);

    VirtioNetRig r;
    crossover::CrossoverPort port{"receiver", nic::ModelId::VirtioNet, r.backend, true};
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);       // vector 1's irqfd, as the broker hands it out
    int doorbell = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // the receiver's doorbell
    std::uint64_t buffer = r.rx.alloc(2048);

    Receiver() { r.net.attach_crossover(port); }
    ~Receiver() {
        ::close(irq);
        ::close(doorbell);
    }
    void bring_up(bool msix = true, std::uint16_t rx_vector = 1) {
        REQUIRE(r.drv.negotiate(kFeatures));
        if (msix) {
            r.drv.set_msix_control(true, false);
            for (unsigned v = 0; v < 3; ++v) r.drv.setup_vector(v);
            r.drv.set_common(vcfg::kMsix, 2, 0);
        }
        constexpr auto none = VirtioDriver::Dev::kNoVector;
        r.drv.setup_queue(0, r.rx.layout(), msix ? rx_vector : none);
        r.drv.setup_queue(1, r.tx.layout(), msix ? 2 : none);
        r.drv.driver_ok();
    }
    std::shared_ptr<crossover::PeerLink> link_from_sender() {
        auto link = make_link(1, kReceiverMac, "virtio-net", r.mem, port.page(), irq);
        link->peer_doorbell = kvm::UniqueFd(::dup(doorbell));
        return link;
    }
    // The guest posts one RX buffer (the same memory each time: the test
    // never reads frames back).
    void post_buffer() { r.rx.add({VirtqueueBuilder::Buf{buffer, 2048, true}}); }
    std::uint64_t pba() { return r.drv.pba(); }
    nic::PeerInterrupt& peer_irq() { return port.shared().virtio_net.peer_irq; }
};

struct Pair {
    Receiver b;
    Sender a;
    explicit Pair(bool msix = true, std::uint16_t rx_vector = 1) {
        b.bring_up(msix, rx_vector);
        a.add(b.link_from_sender());
    }
    // One batch with one frame for the receiver.
    void send_frame() {
        b.post_buffer();
        a.tx.legacy(ethernet(kReceiverMac, kNicMac, 0x0800, 64));
        a.tx.kick();
    }
};

}  // namespace

TEST_CASE("crossover: virtio-net peer interrupts honour the receiver's MSI-X vector mask", "[crossover][msix]") {
    Pair p;
    p.send_frame();
    CHECK(p.b.r.rx.used_idx() == 1);
    CHECK(drain(p.b.irq) == 1);  // unmasked: the peer writes the vector's irqfd itself
    CHECK(p.b.r.msi.count(1) == 0);

    p.b.r.drv.mask_vector(1, true);
    p.send_frame();
    p.send_frame();
    CHECK(p.b.r.rx.used_idx() == 3);  // frames still arrive ...
    CHECK(drain(p.b.irq) == 0);       // ... but a masked vector sends nothing
    CHECK(p.b.r.msi.count(1) == 0);
    CHECK(p.a.counter("xover_peer_irq_masked") >= 1);

    SECTION("the PBA shows it pending; unmask delivers it once") {
        CHECK(p.b.pba() == 0b010);
        CHECK(p.b.pba() == 0b010);  // reading is no acknowledgement
        p.b.r.drv.mask_vector(1, false);
        CHECK(p.b.r.msi.count(1) == 1);
        CHECK(drain(p.b.irq) == 0);
        CHECK(p.b.pba() == 0);
    }
    SECTION("unmask without a PBA read delivers it once") {
        p.b.r.drv.mask_vector(1, false);
        CHECK(p.b.r.msi.count(1) + drain(p.b.irq) == 1);
        CHECK(p.b.pba() == 0);
    }
    // Unmasked again: the direct path is back.
    p.send_frame();
    CHECK(drain(p.b.irq) == 1);
    CHECK(p.b.r.msi.count(1) == 1);
    CHECK(p.b.r.counter("rx_peer_interrupts") == 1);
}

TEST_CASE("crossover: virtio-net peer interrupts honour the MSI-X function mask", "[crossover][msix]") {
    Pair p;
    p.b.r.drv.set_msix_control(true, true);
    p.send_frame();
    CHECK(drain(p.b.irq) == 0);
    CHECK(p.b.r.msi.count(1) == 0);
    CHECK(p.b.pba() == 0b010);
    p.b.r.drv.set_msix_control(true, false);
    CHECK(p.b.r.msi.count(1) == 1);
    CHECK(p.b.pba() == 0);
    p.send_frame();
    CHECK(drain(p.b.irq) == 1);
    CHECK(p.b.r.msi.count(1) == 1);

    SECTION("disabling MSI-X while one is pending raises it as INTx") {
        p.b.r.drv.mask_vector(1, true);
        p.send_frame();
        p.b.r.drv.set_msix_control(false, false);
        CHECK(p.b.r.intx.level);
        CHECK(p.b.r.drv.isr() == virtio_net::spec::kIsrQueue);
        CHECK(drain(p.b.irq) == 0);
    }
}

TEST_CASE("crossover: virtio-net peer interrupts without MSI-X go through the owner as INTx", "[crossover][intx]") {
    Pair p(/*msix=*/false);
    p.send_frame();
    p.send_frame();  // second batch before the owner woke: one doorbell covers both
    CHECK(drain(p.b.irq) == 0);  // never the MSI-X irqfd
    CHECK(drain(p.b.doorbell) == 1);
    CHECK_FALSE(p.b.r.intx.level);
    p.b.r.net.doorbell_rang();  // the receiver's I/O thread
    CHECK(p.b.r.intx.level);
    CHECK(p.b.r.drv.isr() == virtio_net::spec::kIsrQueue);
    CHECK_FALSE(p.b.r.intx.level);
    CHECK(p.b.r.msi.fired.empty());

    p.send_frame();
    CHECK(drain(p.b.doorbell) == 1);
    p.b.r.net.doorbell_rang();
    CHECK(p.b.r.intx.level);
}

TEST_CASE("crossover: virtio-net RX on a vector the peers hold no fd for is raised by the owner", "[crossover][msix]") {
    Pair p(/*msix=*/true, /*rx_vector=*/2);
    p.send_frame();
    CHECK(drain(p.b.irq) == 0);
    CHECK(drain(p.b.doorbell) == 1);
    p.b.r.net.doorbell_rang();
    CHECK(p.b.r.msi.count(2) == 1);
    CHECK(p.b.r.msi.count(1) == 0);
}

TEST_CASE("crossover: a link coming up interrupts a virtio-net receiver's config vector only when unmasked",
          "[crossover][msix]") {
    Receiver b;
    b.bring_up();
    std::uint8_t generation = std::uint8_t(b.r.drv.common(vcfg::kGeneration, 1));
    b.r.drv.mask_vector(0, true);
    E1000Rig other;
    crossover::SharedStatePage other_page = crossover::SharedStatePage::create("test-other", 0);
    int other_irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    auto link = make_link(7, kNicMac, "e1000", other.memory, other_page, other_irq);
    b.r.net.run_locked([&] { REQUIRE(b.port.add_link(link)); });
    b.r.net.link_changed();  // what the agent does after link up: the carrier came up
    CHECK(b.r.drv.common(vcfg::kGeneration, 1) != generation);
    CHECK(b.r.msi.count(0) == 0);
    CHECK(b.pba() == 0b001);
    b.r.drv.mask_vector(0, false);
    CHECK(b.r.msi.count(0) == 1);
    CHECK(b.pba() == 0);
    ::close(other_irq);
}

// The route protocol alone, two threads: the owner flips a vector between
// masked and unmasked while a producer raises interrupts for frames it
// publishes. Never an irqfd write while masked; the last frame is always
// covered by an interrupt (the producer's or the owner's on unmask).
TEST_CASE("crossover: hammer peer interrupt route against mask/unmask", "[crossover][shared-state]") {
    auto page = crossover::SharedStatePage::create("test-peer-irq-hammer", 1);
    nic::PeerInterrupt& irq = page.state().virtio_net.peer_irq;
    irq.set_route(Route::Direct);
    constexpr std::uint32_t kFrames = 20000;
    std::atomic<std::uint32_t> published{0};
    std::atomic<std::uint32_t> covered{0};  // highest frame count an interrupt was sent after
    std::atomic<bool> masked{false};
    std::atomic<std::uint32_t> sent_while_masked{0};
    std::atomic<bool> done{false};
    auto cover = [&] {
        std::uint32_t seen = published.load(std::memory_order_acquire);
        std::uint32_t old = covered.load();
        while (old < seen && !covered.compare_exchange_weak(old, seen)) {
        }
    };

    std::atomic<std::uint64_t> flips{0};
    std::thread producer([&] {
        for (std::uint32_t i = 1; i <= kFrames; ++i) {
            // Interleave for sure: every 1000 frames, wait for one more flip.
            while (i % 1000 == 0 && flips.load() <= i / 1000) std::this_thread::yield();
            published.store(i, std::memory_order_release);
            irq.raise(
                3, [&] {
                    if (masked.load()) sent_while_masked.fetch_add(1);
                    cover();
                },
                [] {});
        }
        done.store(true);
    });
    // A patience no scheduling hiccup outlasts: this test is about ordering.
    constexpr auto kPatience = std::chrono::seconds(1);
    while (!done.load()) {
        irq.set_route(Route::Off, kPatience);  // returns once no producer can still signal
        masked.store(true);
        std::this_thread::yield();
        masked.store(false);
        if (irq.set_route(Route::Direct, kPatience)) cover();
        ++flips;
    }
    producer.join();
    // The guest's final state: unmasked, nothing owed.
    if (irq.set_route(Route::Direct)) cover();
    CHECK(sent_while_masked.load() == 0);
    CHECK(covered.load() == kFrames);
    CHECK_FALSE(irq.is_pending());
    CHECK(irq.wait_timeouts.load() == 0);
    CHECK(flips > 0);
}

TEST_CASE("crossover: a producer that died in flight is forgotten with its link, not waited for forever",
          "[crossover][shared-state]") {
    using Route = nic::PeerInterrupt::Route;
    nic::PeerInterrupt irq;
    irq.set_route(Route::Direct);
    irq.in_flight[5].store(1);  // the producer in slot 5 died between its two steps
    constexpr auto kShort = std::chrono::milliseconds(2);
    irq.set_route(Route::Off, kShort);  // waits, then gives up: counted
    CHECK(irq.wait_timeouts.load() == 1);
    irq.set_route(Route::Direct, kShort);
    irq.set_route(Route::Off, kShort);  // and so on, at every mask, while it is remembered
    CHECK(irq.wait_timeouts.load() == 2);
    irq.forget_producer(5);  // its link went down
    irq.set_route(Route::Direct, kShort);
    irq.set_route(Route::Off, kShort);
    CHECK(irq.wait_timeouts.load() == 2);
    // A live producer in another slot is still waited for.
    irq.set_route(Route::Direct, kShort);
    irq.in_flight[2].store(1);
    std::thread finish([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        irq.in_flight[2].store(0);
    });
    irq.set_route(Route::Off, std::chrono::seconds(5));
    CHECK(irq.in_flight[2].load() == 0);
    finish.join();
    CHECK(irq.wait_timeouts.load() == 2);
}

TEST_CASE("crossover: a virtio-net link going down forgets its producer's in-flight count", "[crossover][msix]") {
    Pair p;
    // b's side of a link whose producer (a's process) counts in b's slot 4.
    auto link = make_link(7, kNicMac, "e1000", p.a.rig.memory, p.a.port.page(), p.b.irq);
    link->peer_producer_slot = 4;
    p.b.r.net.run_locked([&] { REQUIRE(p.b.port.add_link(link)); });
    nic::VirtioNetState& own = p.b.port.shared().virtio_net;
    own.peer_irq.in_flight[4].store(1);  // as if a's process died in flight
    own.peer_tx_irq.in_flight[4].store(1);
    own.peer_irq.in_flight[3].store(1);  // another producer's: not this link's
    p.b.r.net.run_locked([&] { CHECK(p.b.port.remove_link(7) != nullptr); });
    CHECK(own.peer_irq.in_flight[4].load() == 0);
    CHECK(own.peer_tx_irq.in_flight[4].load() == 0);
    CHECK(own.peer_irq.in_flight[3].load() == 1);
    own.peer_irq.in_flight[3].store(0);
}

TEST_CASE("crossover: once its virtio window peer is gone, a NIC's next TX completion continues where the peer's "
          "process left its used ring",
          "[crossover][window]") {
    Pair p;
    // b lends TX heads over a window link; a's process completes them in b's used ring.
    auto link = make_link(7, kNicMac, "virtio-net", p.a.rig.memory, p.a.port.page(), p.b.irq);
    p.b.r.net.run_locked([&] {
        REQUIRE(p.b.port.add_link(link));
        p.b.port.set_window_link(7);
    });
    nic::TxHandoff& h = nic::tx_handoff(p.b.port.shared());
    using Writer = nic::NicPort::TxCompletion;
    std::uint32_t used = 0;
    p.b.r.net.run_locked([&] {
        REQUIRE(p.b.port.begin_tx_completion(used) == Writer::Shared);
        p.b.port.end_tx_completion(5);  // b's own completions, up to 5
    });
    h.completion_pos.store(9);  // a's process completed b's last loans, then a left
    p.b.r.net.run_locked([&] {
        REQUIRE(p.b.port.remove_link(7) != nullptr);
        // Nothing is lent and no peer is left, yet b's ring position is 9,
        // not the 5 b last wrote: continuing at 5 would hand the guest
        // used elements it already consumed.
        REQUIRE(p.b.port.begin_tx_completion(used) == Writer::Shared);
        CHECK(used == 9);
        p.b.port.end_tx_completion(10);
        CHECK(p.b.port.begin_tx_completion(used) == Writer::Own);  // b's alone again
    });
}

// The same race through the real devices: the receiver's guest masks and
// unmasks vector 1 through its BAR (vCPU thread) while the sender's
// device transmits (its own thread). Frames in flight while masked stay
// pending; the irqfd stays quiet between a mask write and the unmask.
TEST_CASE("crossover: hammer virtio-net MSI-X mask/unmask while a peer transmits", "[crossover][shared-state]") {
    Pair p;
    constexpr int kFrames = 2000;
    std::atomic<bool> done{false};
    std::atomic<unsigned> cycles{0};
    std::thread producer([&] {
        for (int i = 0; i < kFrames; ++i) {
            // Interleave for sure, however the threads are scheduled: every
            // 100 frames, wait for one more mask/unmask cycle.
            while (i % 100 == 0 && cycles.load() <= unsigned(i / 100)) std::this_thread::yield();
            p.send_frame();
        }
        done.store(true);
    });
    unsigned masked_irqs = 0;
    std::uint64_t delivered = 0;
    while (!done.load()) {
        p.b.r.drv.mask_vector(1, true);
        delivered += drain(p.b.irq);  // sent before the mask completed
        std::this_thread::yield();
        (void)p.b.pba();
        masked_irqs += unsigned(drain(p.b.irq));  // must stay 0
        p.b.r.drv.mask_vector(1, false);
        ++cycles;
    }
    producer.join();
    delivered += drain(p.b.irq) + p.b.r.msi.count(1);
    CHECK(masked_irqs == 0);
    CHECK(p.b.r.rx.used_idx() == kFrames);
    CHECK(delivered >= 1);
    CHECK_FALSE(p.b.peer_irq().is_pending());  // unmasked at the end: nothing left owed
    CHECK(p.b.pba() == 0);
    CHECK(cycles > 0);
}

TEST_CASE("crossover: a virtio-net NIC publishes its TX queue's route for peers that complete its TX work",
          "[crossover][msix]") {
    Receiver b;
    b.bring_up();  // TX queue on vector 2, the one peers hold an irqfd for
    nic::PeerInterrupt& tx = b.port.shared().virtio_net.peer_tx_irq;
    CHECK(tx.route.load() == nic::PeerInterrupt::Direct);
    int signalled = 0, woken = 0;
    auto raise = [&] { return tx.raise(0, [&] { ++signalled; }, [&] { ++woken; }); };
    CHECK(raise() == nic::PeerInterrupt::Outcome::Signalled);

    b.r.drv.mask_vector(2, true);  // masked: left pending, shown in the PBA, delivered on unmask
    CHECK(tx.route.load() == nic::PeerInterrupt::Off);
    CHECK(raise() == nic::PeerInterrupt::Outcome::LeftPending);
    CHECK(b.pba() == 0b100);
    b.r.drv.mask_vector(2, false);
    CHECK(b.r.msi.count(2) == 1);
    CHECK(b.r.counter("tx_peer_interrupts") == 1);

    b.r.drv.setup_queue(1, b.r.tx.layout(), 0);  // another vector: only the owner may raise it
    CHECK(tx.route.load() == nic::PeerInterrupt::ViaOwner);
    CHECK(raise() == nic::PeerInterrupt::Outcome::WokeOwner);
    b.r.net.doorbell_rang();
    CHECK(b.r.msi.count(0) == 1);
    CHECK(signalled == 1);
    CHECK(woken == 1);
}

// Not an interrupt, but this file has the virtio-net receiver: its
// rx_frames count peers' frames too, and xover_rx_frames only those.
TEST_CASE("crossover: a virtio-net receiver's rx_frames include what peers delivered", "[crossover][counters]") {
    Pair p;
    p.send_frame();
    p.send_frame();
    p.b.post_buffer();
    const Bytes from_backend = ethernet(kReceiverMac, kNicMac, 0x0800, 100);
    CHECK(p.b.r.net.deliver(from_backend));
    CHECK(p.b.r.rx.used_idx() == 3);
    const std::uint64_t crossed = 2 * ethernet(kReceiverMac, kNicMac, 0x0800, 64).size();
    CHECK(p.b.r.counter("xover_rx_frames") == 2);
    CHECK(p.b.r.counter("xover_rx_bytes") == crossed);
    CHECK(p.b.r.counter("rx_frames") == 3);
    CHECK(p.b.r.counter("rx_bytes") == crossed + from_backend.size());
    CHECK(p.a.counter("xover_tx_bytes") == crossed);
}
