// A crossover producer filling an e1000 receiver's ring must honour what
// the receiver's guest programmed, as the receiving NIC itself would: its
// receive filter (RCTL.BAM/UPE/MPE, RAL/RAH, MTA, VFTA) drops frames before
// they reach the ring, and its interrupt moderation (RDTR/RADV, ITR) delays
// RXT0 — delivered by the receiver's own timer, not by the producer.
// The sender is an e1000 with a CrossoverPort; the receiver a real E1000
// with its own port, programmed through its registers like a guest.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>

#include "crossover_sender.hpp"

using namespace xover;
using namespace xover::test;
namespace reg = e1000::reg;
namespace rctl = e1000::rctl;

namespace {

const net::MacAddress kReceiverMac{{0x52, 0x54, 0x00, 0x77, 0x00, 0x01}};
const net::MacAddress kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const net::MacAddress kOtherMac{{0x52, 0x54, 0x00, 0x77, 0x00, 0x09}};
// An IPv4 multicast group (mDNS, 224.0.0.251).
const net::MacAddress kMulticast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};

struct Receiver {
    E1000Receiver rig{kReceiverMac};
    crossover::CrossoverPort& port = rig.port;
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);       // its INTx irqfd, as peers hold it
    int doorbell = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // its doorbell, as peers hold it
    std::optional<RxRing> rx;

    explicit Receiver(std::uint32_t rctl_bits = rctl::SECRC, std::uint32_t descriptors = 8) {
        rx.emplace(rig, descriptors, rctl_bits);
        rig.wr(reg::IMS, e1000::icr::RXT0);
    }
    ~Receiver() {
        ::close(irq);
        ::close(doorbell);
    }
    std::shared_ptr<crossover::PeerLink> link_from_sender() {
        auto link = make_link(1, kReceiverMac, "e1000", rig.memory, port.page(), irq);
        link->peer_doorbell = kvm::UniqueFd(::dup(doorbell));
        return link;
    }
    std::uint32_t rdh() { return rig.rd(reg::RDH); }
    // ICR as the shared page holds it (a register read would clear it).
    std::uint32_t icr() { return port.shared().icr.load(); }
    void set_rctl(std::uint32_t bits) { rig.wr(reg::RCTL, rctl::EN | rctl::SECRC | bits); }
};

struct Pair {
    Receiver b;
    Sender a;
    explicit Pair(std::uint32_t rctl_bits = rctl::SECRC) : b(rctl_bits) { a.add(b.link_from_sender()); }
    void send(const net::MacAddress& dst, std::size_t payload = 64) {
        a.tx.legacy(ethernet(dst, kNicMac, 0x0800, payload));
        a.tx.kick();
    }
};

// The MTA bit the 82540EM's hash picks for `mac` with RCTL.MO = 0: address
// bits 47:36, i.e. the upper nibble of byte 4 and all of byte 5.
std::pair<std::uint32_t, std::uint32_t> mta_bit(const net::MacAddress& mac) {
    std::uint32_t hash = (std::uint32_t(mac.bytes[4]) >> 4 | std::uint32_t(mac.bytes[5]) << 4) & 0xFFF;
    return {reg::MTA + 4 * (hash >> 5), 1u << (hash & 31)};
}

}  // namespace

TEST_CASE("crossover: e1000 peer filter drops broadcast while BAM is clear, delivers it once set") {
    Pair p(rctl::SECRC);  // no BAM
    p.send(kBroadcast);
    CHECK(p.b.rdh() == 0);
    CHECK(p.a.counter("xover_dropped_filtered") == 1);
    CHECK(p.b.rig.counter("xover_rx_peer_filtered") == 1);
    CHECK(drain(p.b.irq) == 0);
    CHECK((p.b.icr() & e1000::icr::RXT0) == 0);
    CHECK(p.a.rig.backend.sent.size() == 1);  // the physical path still has it

    p.b.set_rctl(rctl::BAM);
    p.send(kBroadcast);
    CHECK(p.b.rdh() == 1);
    CHECK(p.b.rx->frame(0) == ethernet(kBroadcast, kNicMac, 0x0800, 64));
    CHECK(p.a.counter("xover_dropped_filtered") == 1);
    CHECK(drain(p.b.irq) == 1);  // RDTR = ITR = 0: the producer injects
    CHECK(drain(p.b.doorbell) == 0);  // and never wakes the owner
}

TEST_CASE("crossover: e1000 peer filter takes multicast by its MTA hash bit or MPE") {
    Pair p(rctl::BAM | rctl::SECRC);
    p.send(kMulticast);
    CHECK(p.b.rdh() == 0);
    CHECK(p.a.counter("xover_dropped_filtered") == 1);

    SECTION("the group's MTA bit set") {
        auto [offset, bit] = mta_bit(kMulticast);
        p.b.rig.wr(offset, bit);
        p.send(kMulticast);
        CHECK(p.b.rdh() == 1);
        SECTION("another group hashing elsewhere is still dropped") {
            const net::MacAddress other{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
            REQUIRE(mta_bit(other) != mta_bit(kMulticast));
            p.send(other);
            CHECK(p.b.rdh() == 1);
            CHECK(p.a.counter("xover_dropped_filtered") == 2);
        }
        SECTION("clearing the table drops it again") {
            p.b.rig.wr(offset, 0);
            p.send(kMulticast);
            CHECK(p.b.rdh() == 1);
        }
    }
    SECTION("multicast promiscuous (MPE)") {
        p.b.set_rctl(rctl::BAM | rctl::MPE);
        p.send(kMulticast);
        CHECK(p.b.rdh() == 1);
    }
    SECTION("an exact-match receive address") {
        auto& m = kMulticast.bytes;
        p.b.rig.wr(reg::RAL(3), m[0] | m[1] << 8 | m[2] << 16 | std::uint32_t(m[3]) << 24);
        p.b.rig.wr(reg::RAH(3), m[4] | m[5] << 8 | e1000::RAH_AV);
        p.send(kMulticast);
        CHECK(p.b.rdh() == 1);
    }
}

TEST_CASE("crossover: e1000 peer filter follows a guest that changed its MAC, UPE takes everything") {
    Pair p;
    p.send(kReceiverMac);  // the MAC the link was made for, still RAL0
    CHECK(p.b.rdh() == 1);

    // The guest moves to another address (RAL0/RAH0): unicast to the old one
    // is no longer for this NIC. Lossless or not, a filtered frame is gone:
    // the sender's descriptor completes.
    auto& m = kOtherMac.bytes;
    p.b.rig.wr(reg::RAL0, m[0] | m[1] << 8 | m[2] << 16 | std::uint32_t(m[3]) << 24);
    p.b.rig.wr(reg::RAH0, m[4] | m[5] << 8 | e1000::RAH_AV);
    p.send(kReceiverMac);
    CHECK(p.b.rdh() == 1);
    CHECK(p.a.counter("xover_dropped_filtered") == 1);
    CHECK(p.a.rig.rd(reg::TDH) == 2);
    CHECK((p.a.tx.status(1) & e1000::txd::STA_DD) != 0);

    SECTION("unicast promiscuous (UPE)") {
        p.b.set_rctl(rctl::UPE);
        p.send(kReceiverMac);
        CHECK(p.b.rdh() == 2);
    }
    SECTION("the address valid bit cleared on every entry") {
        p.b.rig.wr(reg::RAH0, 0);
        p.send(kReceiverMac);
        CHECK(p.b.rdh() == 1);
        CHECK(p.a.counter("xover_dropped_filtered") == 2);
    }
    SECTION("a reset reloads the EEPROM address") {
        p.b.rig.wr(reg::CTRL, e1000::ctrl::RST);
        RxRing again(p.b.rig, 8, rctl::SECRC);
        p.b.rig.wr(reg::IMS, e1000::icr::RXT0);
        p.send(kReceiverMac);
        CHECK(p.b.rdh() == 1);
        CHECK(p.a.counter("xover_dropped_filtered") == 1);
    }
}

TEST_CASE("crossover: e1000 peer VLAN filter (VFE) drops tagged frames whose VID is not in the VFTA") {
    Pair p;
    p.b.set_rctl(rctl::VFE);
    auto tagged = [](std::uint16_t vid) {
        Bytes f = ethernet(kReceiverMac, kNicMac, 0x8100, 64);
        f[14] = std::uint8_t(vid >> 8);
        f[15] = std::uint8_t(vid);
        f[16] = 0x08;
        f[17] = 0x00;
        return f;
    };
    p.a.tx.legacy(tagged(100));
    p.a.tx.kick();
    CHECK(p.b.rdh() == 0);
    CHECK(p.a.counter("xover_dropped_filtered") == 1);

    p.b.rig.wr(reg::VFTA + 4 * (100 >> 5), 1u << (100 & 31));
    p.a.tx.legacy(tagged(100));
    p.a.tx.legacy(ethernet(kReceiverMac, kNicMac, 0x0800, 64));  // untagged: not VLAN-filtered
    p.a.tx.kick();
    CHECK(p.b.rdh() == 2);
}

TEST_CASE("crossover: e1000 peer with RDTR gets RXT0 from its own timer, not from the producer") {
    Pair p;
    p.b.rig.use_fake_timer();
    p.b.rig.wr(reg::RDTR, 10);  // 10.24 us of quiet
    p.send(kReceiverMac);
    CHECK(p.b.rdh() == 1);
    CHECK(drain(p.b.irq) == 0);  // no immediate interrupt
    CHECK((p.b.icr() & e1000::icr::RXT0) == 0);
    CHECK(p.a.counter("xover_peer_irq_via_owner") == 1);
    CHECK(drain(p.b.doorbell) == 1);

    // Before the owner wakes, a second batch rings nothing more: the
    // deferred flag is still set, one wake-up covers both.
    p.send(kReceiverMac);
    CHECK(drain(p.b.doorbell) == 0);
    CHECK(p.a.counter("xover_peer_irq_via_owner") == 1);

    p.b.rig.nic.doorbell_rang();  // what the receiver's I/O thread does
    CHECK(p.b.rig.counter("rx_peer_moderated") == 1);
    CHECK(!p.b.rig.irq.level);
    CHECK(p.b.rig.timer.armed == p.b.rig.timer.now + 10 * 1024);
    p.b.rig.advance_ns(10 * 1024 - 1);
    CHECK(!p.b.rig.irq.level);
    CHECK((p.b.icr() & e1000::icr::RXT0) == 0);
    p.b.rig.advance_ns(1);
    CHECK(p.b.rig.irq.level);
    CHECK((p.b.rig.rd(reg::ICR) & e1000::icr::RXT0) != 0);
    CHECK(!p.b.rig.irq.level);  // read-to-clear lowers the line
    CHECK(drain(p.b.irq) == 0);  // the producer never wrote the irqfd

    SECTION("the next batch after the owner took the flag rings again") {
        p.send(kReceiverMac);
        CHECK(drain(p.b.doorbell) == 1);
        p.b.rig.nic.doorbell_rang();
        p.b.rig.advance_ns(10 * 1024);
        CHECK(p.b.rig.irq.level);
    }
    SECTION("RDTR back to 0: the producer injects directly again") {
        p.b.rig.wr(reg::RDTR, 0);
        p.send(kReceiverMac);
        CHECK(drain(p.b.doorbell) == 0);
        CHECK(drain(p.b.irq) == 1);
    }
    SECTION("RXT0 masked: the cause is set at once, nobody is woken") {
        p.b.rig.wr(reg::IMC, e1000::icr::RXT0);
        p.send(kReceiverMac);
        CHECK(drain(p.b.doorbell) == 0);
        CHECK(drain(p.b.irq) == 0);
        CHECK((p.b.icr() & e1000::icr::RXT0) != 0);
    }
}

TEST_CASE("crossover: e1000 peer with ITR throttles RXT0 edges through its own timer") {
    Pair p;
    p.b.rig.use_fake_timer();
    p.b.rig.wr(reg::ITR, 1000);  // at most one edge per 256 us
    p.send(kReceiverMac);
    CHECK(drain(p.b.irq) == 0);
    CHECK(drain(p.b.doorbell) == 1);
    p.b.rig.nic.doorbell_rang();
    CHECK(p.b.rig.irq.level);  // the first edge is not held back
    CHECK((p.b.rig.rd(reg::ICR) & e1000::icr::RXT0) != 0);

    p.b.rig.advance_ns(1000);
    p.send(kReceiverMac);
    CHECK(drain(p.b.doorbell) == 1);
    p.b.rig.nic.doorbell_rang();
    CHECK(!p.b.rig.irq.level);  // 1 us after the last edge: held back
    CHECK((p.b.icr() & e1000::icr::RXT0) != 0);  // but the cause is there
    p.b.rig.advance_ns(256'000);
    CHECK(p.b.rig.irq.level);
    CHECK(p.b.rig.irq.raised == 2);
}

TEST_CASE("crossover: e1000 peer filter changes while a producer sends (every frame delivered or filtered)") {
    constexpr unsigned kFrames = 150;
    Receiver b(rctl::BAM | rctl::SECRC, 256);
    Sender a;
    a.add(b.link_from_sender());
    std::atomic<bool> done{false};
    std::thread owner([&] {
        // The owner's guest toggles BAM and rewrites its MTA meanwhile.
        for (unsigned i = 0; !done.load(); ++i) {
            b.set_rctl(i % 2 ? rctl::BAM : 0);
            b.rig.wr(reg::MTA + 4 * (i % 128), i);
        }
    });
    for (unsigned i = 0; i < kFrames; ++i) {
        a.tx.legacy(ethernet(kBroadcast, kNicMac, 0x0806, 46));
        a.tx.kick();
    }
    done = true;
    owner.join();
    std::uint64_t delivered = b.rdh();
    CHECK(delivered + a.counter("xover_dropped_filtered") == kFrames);
    CHECK(b.rig.counter("xover_rx_peer_filtered") == a.counter("xover_dropped_filtered"));
    std::uint64_t written = 0;
    for (std::uint32_t i = 0; i < 256; ++i) written += (b.rx->status(i) & e1000::rxd::STA_DD) != 0;
    CHECK(written == delivered);  // nothing written past RDH, nothing filtered written
}
