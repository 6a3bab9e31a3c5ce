// e1000 receive path: address filtering, descriptor write-back, frames
// spanning buffers, no-buffer backpressure, FCS, VLAN stripping, checksum
// offload status, RXDMT0 and the receive interrupt delay.
#include <catch2/catch.hpp>

#include "e1000_ring_builder.hpp"

using namespace xover;
using namespace xover::e1000;
using namespace xover::test;

namespace {
const net::MacAddress kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const net::MacAddress kMulticast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};

Bytes to_nic(std::size_t payload = 100) { return ethernet(kNicMac, kPeerMac, 0x0800, payload); }
}  // namespace

TEST_CASE("e1000 RX delivers a frame for our MAC and writes the descriptor", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig);
    rig.wr(reg::IMS, icr::RXT0);
    Bytes frame = to_nic();
    CHECK(rig.nic.deliver(frame));
    CHECK(rx.length(0) == frame.size());
    CHECK((rx.status(0) & (rxd::STA_DD | rxd::STA_EOP)) == (rxd::STA_DD | rxd::STA_EOP));
    CHECK(rx.buffer(0) == frame);
    CHECK(rig.rd(reg::RDH) == 1);
    CHECK(rig.irq.level);
    CHECK((rig.rd(reg::ICR) & icr::RXT0) != 0);
    CHECK(rig.rd(reg::GPRC) == 1);
    CHECK(rig.rd(reg::GORCL) == frame.size() + 4);
    CHECK(rig.counter("rx_frames") == 1);
}

TEST_CASE("e1000 RX address filter", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig, 16, 0);  // no BAM, no promiscuous modes, keep FCS
    const net::MacAddress other{{0x52, 0x54, 0x00, 0x99, 0x99, 0x99}};

    SECTION("exact match on RAL0/RAH0, others filtered") {
        CHECK(rig.nic.deliver(to_nic()));
        CHECK(rig.rd(reg::RDH) == 1);
        CHECK(rig.nic.deliver(ethernet(other, kPeerMac, 0x0800, 60)));
        CHECK(rig.rd(reg::RDH) == 1);
        CHECK(rig.counter("rx_filtered") == 1);
    }
    SECTION("a second receive address needs AV") {
        std::uint32_t low = 0x99005452, high = 0x9999;
        rig.wr(reg::RAL(5), low);
        rig.wr(reg::RAH(5), high);
        rig.nic.deliver(ethernet(other, kPeerMac, 0x0800, 60));
        CHECK(rig.rd(reg::RDH) == 0);
        rig.wr(reg::RAH(5), high | RAH_AV);
        rig.nic.deliver(ethernet(other, kPeerMac, 0x0800, 60));
        CHECK(rig.rd(reg::RDH) == 1);
    }
    SECTION("broadcast needs BAM") {
        rig.nic.deliver(ethernet(kBroadcast, kPeerMac, 0x0806, 46));
        CHECK(rig.rd(reg::RDH) == 0);
        rig.wr(reg::RCTL, rig.rd(reg::RCTL) | rctl::BAM);
        rig.nic.deliver(ethernet(kBroadcast, kPeerMac, 0x0806, 46));
        CHECK(rig.rd(reg::RDH) == 1);
        CHECK(rig.rd(reg::BPRC) == 1);
    }
    SECTION("multicast through the MTA hash, for every RCTL.MO") {
        for (unsigned mo = 0; mo < 4; ++mo) {
            INFO("MO " << mo);
            for (unsigned i = 0; i < 128; ++i) rig.wr(reg::MTA + 4 * i, 0);
            std::uint32_t rctl_value = (rig.rd(reg::RCTL) & ~(3u << rctl::MO_SHIFT)) | mo << rctl::MO_SHIFT;
            rig.wr(reg::RCTL, rctl_value);
            std::uint32_t head = rig.rd(reg::RDH);
            rig.nic.deliver(ethernet(kMulticast, kPeerMac, 0x0800, 60));
            CHECK(rig.rd(reg::RDH) == head);
            // Hash of 01:00:5e:00:00:fb: bytes 4 and 5 are 0x00, 0xfb.
            std::uint32_t hash = mo == 3 ? (0x00 | 0xfb << 8) : (0x00 >> (4 - mo) | 0xfb << (4 + mo));
            hash &= 0xFFF;
            rig.wr(reg::MTA + 4 * (hash >> 5), 1u << (hash & 31));
            rig.nic.deliver(ethernet(kMulticast, kPeerMac, 0x0800, 60));
            CHECK(rig.rd(reg::RDH) == head + 1);
        }
        CHECK(rig.rd(reg::MPRC) == 4);
    }
    SECTION("UPE accepts any unicast, MPE any multicast") {
        rig.wr(reg::RCTL, rig.rd(reg::RCTL) | rctl::UPE);
        rig.nic.deliver(ethernet(other, kPeerMac, 0x0800, 60));
        CHECK(rig.rd(reg::RDH) == 1);
        rig.nic.deliver(ethernet(kMulticast, kPeerMac, 0x0800, 60));
        CHECK(rig.rd(reg::RDH) == 1);
        rig.wr(reg::RCTL, rig.rd(reg::RCTL) | rctl::MPE);
        rig.nic.deliver(ethernet(kMulticast, kPeerMac, 0x0800, 60));
        CHECK(rig.rd(reg::RDH) == 2);
    }
}

TEST_CASE("e1000 RX appends the FCS unless SECRC", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig, 8, rctl::BAM);
    Bytes frame = to_nic(50);
    rig.nic.deliver(frame);
    Bytes got = rx.buffer(0);
    REQUIRE(got.size() == frame.size() + 4);
    CHECK(std::equal(frame.begin(), frame.end(), got.begin()));
    // CRC-32 of "frame" (reference bitwise implementation).
    std::uint32_t crc = 0xFFFFFFFF;
    for (std::uint8_t b : frame) {
        crc ^= b;
        for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
    }
    crc = ~crc;
    CHECK(got[frame.size()] == std::uint8_t(crc));
    CHECK(got[frame.size() + 3] == std::uint8_t(crc >> 24));
}

TEST_CASE("e1000 RX frame spans several buffers", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig, 8, rctl::BAM | rctl::SECRC | rctl::LPE, 512);
    Bytes frame = to_nic(1400);  // 1414 bytes: 3 buffers of 512
    CHECK(rig.nic.deliver(frame));
    CHECK(rx.length(0) == 512);
    CHECK(rx.length(1) == 512);
    CHECK(rx.length(2) == 1414 - 1024);
    CHECK((rx.status(0) & rxd::STA_EOP) == 0);
    CHECK((rx.status(0) & rxd::STA_DD) != 0);
    CHECK((rx.status(2) & rxd::STA_EOP) != 0);
    CHECK(rx.frame(0) == frame);
    CHECK(rig.rd(reg::RDH) == 3);
}

TEST_CASE("e1000 RX with no free descriptor refuses, counts, resumes on RDT", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig, 8);  // 7 usable descriptors (rings are multiples of 8)
    for (int k = 0; k < 7; ++k) CHECK(rig.nic.deliver(to_nic()));
    CHECK(rig.rd(reg::RDH) == 7);
    CHECK_FALSE(rig.nic.deliver(to_nic()));
    CHECK(rig.rd(reg::RNBC) == 1);
    CHECK(rig.counter("rx_dropped_no_buffer") == 1);
    CHECK((rig.rd(reg::ICR) & icr::RXO) != 0);
    unsigned calls = rig.backend.rx_space_calls;
    rx.set_tail(2);  // hand back descriptors 7, 0, 1
    CHECK(rig.backend.rx_space_calls == calls + 1);
    CHECK(rig.nic.deliver(to_nic()));
    CHECK(rig.rd(reg::RDH) == 0);  // wrapped
    // A frame that needs more descriptors than are free is refused whole.
    RxRing small(rig, 8, rctl::BAM | rctl::SECRC | rctl::LPE, 256);
    small.set_tail(2);
    CHECK_FALSE(rig.nic.deliver(to_nic(600)));  // needs 3
    CHECK(rig.rd(reg::RDH) == 0);
    small.set_tail(3);
    CHECK(rig.nic.deliver(to_nic(600)));
    CHECK(rig.rd(reg::RDH) == 3);
}

TEST_CASE("e1000 RX disabled refuses frames, oversize frames are dropped", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig);
    rig.wr(reg::RCTL, rig.rd(reg::RCTL) & ~rctl::EN);
    CHECK_FALSE(rig.nic.deliver(to_nic()));  // not ready: a lossless backend keeps it
    CHECK(rig.rd(reg::RDH) == 0);
    CHECK(rig.counter("rx_dropped_disabled") == 1);
    rig.wr(reg::RCTL, rig.rd(reg::RCTL) | rctl::EN);
    CHECK(rig.nic.deliver(to_nic(1600)));  // > 1522 without LPE
    CHECK(rig.rd(reg::RDH) == 0);
    CHECK(rig.rd(reg::ROC) == 1);
    CHECK(rig.nic.deliver(to_nic(1500)));
    CHECK(rig.rd(reg::RDH) == 1);
}

TEST_CASE("e1000 RX VLAN: filter with VFE, strip with CTRL.VME", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig);
    Bytes inner = to_nic(80);
    Bytes tagged(inner.begin(), inner.begin() + 12);
    for (std::uint8_t b : {0x81, 0x00, 0x20, 0x05}) tagged.push_back(b);  // VID 5, PCP 1
    tagged.insert(tagged.end(), inner.begin() + 12, inner.end());

    rig.wr(reg::RCTL, rig.rd(reg::RCTL) | rctl::VFE);
    rig.nic.deliver(tagged);
    CHECK(rig.rd(reg::RDH) == 0);  // VID 5 not in VFTA
    rig.wr(reg::VFTA, 1u << 5);
    rig.nic.deliver(tagged);
    CHECK(rig.rd(reg::RDH) == 1);
    CHECK(rx.buffer(0) == tagged);  // VME off: tag kept
    CHECK((rx.status(0) & rxd::STA_VP) == 0);

    rig.wr(reg::CTRL, rig.rd(reg::CTRL) | ctrl::VME);
    rig.nic.deliver(tagged);
    CHECK(rx.buffer(1) == inner);
    CHECK((rx.status(1) & rxd::STA_VP) != 0);
    CHECK(rx.special(1) == 0x2005);
}

TEST_CASE("e1000 RX checksum offload status", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig);
    Bytes good = tcp_frame(200, false);
    std::copy(kNicMac.bytes.begin(), kNicMac.bytes.end(), good.begin());
    finish_checksums(good);
    rig.nic.deliver(good);
    CHECK((rx.status(0) & (rxd::STA_IPCS | rxd::STA_TCPCS)) == (rxd::STA_IPCS | rxd::STA_TCPCS));
    CHECK(rx.errors(0) == 0);

    Bytes bad = good;
    bad[60] ^= 0xFF;  // corrupt the payload
    rig.nic.deliver(bad);
    CHECK((rx.errors(1) & rxd::ERR_TCPE) != 0);
    CHECK((rx.errors(1) & rxd::ERR_IPE) == 0);

    Bytes udp = udp_frame(33);
    std::copy(kNicMac.bytes.begin(), kNicMac.bytes.end(), udp.begin());
    finish_checksums(udp);
    rig.nic.deliver(udp);
    CHECK((rx.status(2) & rxd::STA_TCPCS) != 0);
    CHECK(rx.errors(2) == 0);

    rig.wr(reg::RXCSUM, 0);
    rig.nic.deliver(good);
    CHECK((rx.status(3) & rxd::STA_IXSM) != 0);
    CHECK((rx.status(3) & (rxd::STA_IPCS | rxd::STA_TCPCS)) == 0);
}

TEST_CASE("e1000 RX RXDMT0 when free descriptors reach the threshold", "[e1000][rx]") {
    E1000Rig rig;
    RxRing rx(rig, 16);  // 15 free; RDMTS 00: half (8)
    rig.wr(reg::IMS, icr::RXDMT0);
    for (int k = 0; k < 6; ++k) rig.nic.deliver(to_nic());
    CHECK_FALSE(rig.irq.level);  // 9 free
    rig.nic.deliver(to_nic());  // 8 free
    CHECK(rig.irq.level);
    CHECK((rig.rd(reg::ICR) & icr::RXDMT0) != 0);
}

TEST_CASE("e1000 RX interrupt delay (RDTR/RADV) and FPD flush", "[e1000][rx]") {
    E1000Rig rig;
    rig.use_fake_timer();
    RxRing rx(rig, 32);
    rig.wr(reg::IMS, icr::RXT0);
    rig.wr(reg::RDTR, 10);  // 10.24 us of quiet
    rig.wr(reg::RADV, 40);  // 40.96 us at most
    rig.nic.deliver(to_nic());
    CHECK_FALSE(rig.irq.level);
    rig.advance_ns(11'000);
    CHECK(rig.irq.level);
    rig.rd(reg::ICR);
    CHECK_FALSE(rig.irq.level);

    for (int k = 0; k < 4; ++k) {  // a frame every 8 us keeps RDTR from expiring
        rig.nic.deliver(to_nic());
        rig.advance_ns(8'000);
        CHECK_FALSE(rig.irq.level);
    }
    rig.nic.deliver(to_nic());
    rig.advance_ns(9'000);  // 41 us after the first of the burst; RDTR still running
    CHECK(rig.irq.level);
    rig.rd(reg::ICR);

    rig.nic.deliver(to_nic());
    CHECK_FALSE(rig.irq.level);
    rig.wr(reg::RDTR, 10 | DELAY_FPD);
    CHECK(rig.irq.level);
}
