// e1000 transmit path: legacy, context and data descriptors, multi-
// descriptor frames, checksum offloads, TSO, VLAN insertion, write-back
// and interrupts, backend backpressure, TX interrupt delay.
#include <catch2/catch.hpp>

#include "e1000_ring_builder.hpp"

using namespace xover;
using namespace xover::e1000;
using namespace xover::test;

namespace {
constexpr std::uint8_t EOP_RS = txd::CMD_EOP | txd::CMD_RS;
}

TEST_CASE("e1000 TX legacy descriptor sends one frame and writes back DD", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    rig.wr(reg::IMS, icr::TXDW);
    Bytes frame = ethernet(kPeerMac, kNicMac, 0x0800, 100);
    auto i = tx.legacy(frame);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    CHECK(rig.backend.sent[0] == frame);
    CHECK((tx.status(i) & txd::STA_DD) != 0);
    CHECK(rig.rd(reg::TDH) == 1);
    CHECK(rig.irq.level);
    CHECK(rig.rd(reg::ICR) == (icr::TXDW | icr::TXQE));
    CHECK(rig.counter("tx_frames") == 1);
    CHECK(rig.counter("tx_bytes") == frame.size());
    CHECK(rig.counter("tdt_writes") == 2);  // the ring builder's reset + kick
}

TEST_CASE("e1000 TX without RS leaves DD clear and raises no TXDW", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    auto i = tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 50), txd::CMD_EOP);
    tx.kick();
    CHECK(rig.backend.sent.size() == 1);
    CHECK((tx.status(i) & txd::STA_DD) == 0);
    CHECK(rig.rd(reg::ICR) == icr::TXQE);
}

TEST_CASE("e1000 TX frame spread over several descriptors, ring wrap", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig, 8);
    // Move the ring near its end so the frame wraps.
    for (int k = 0; k < 6; ++k) tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 46));
    tx.kick();
    rig.backend.sent.clear();
    Bytes frame = ethernet(kPeerMac, kNicMac, 0x86DD, 3000);
    Bytes a(frame.begin(), frame.begin() + 1000), b(frame.begin() + 1000, frame.begin() + 2000),
        c(frame.begin() + 2000, frame.end());
    tx.legacy(a, 0);
    tx.legacy(b, txd::CMD_RS);
    auto last = tx.legacy(c, EOP_RS);
    CHECK(last == 0);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    CHECK(rig.backend.sent[0] == frame);
    CHECK(rig.rd(reg::TDH) == 1);
    CHECK((tx.status(7) & txd::STA_DD) != 0);
    CHECK((tx.status(0) & txd::STA_DD) != 0);
}

TEST_CASE("e1000 TX frame completed by a later TDT write", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    Bytes frame = ethernet(kPeerMac, kNicMac, 0x0800, 200);
    tx.legacy(Bytes(frame.begin(), frame.begin() + 100), 0);
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.rd(reg::TDH) == 1);
    tx.legacy(Bytes(frame.begin() + 100, frame.end()));
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    CHECK(rig.backend.sent[0] == frame);
}

TEST_CASE("e1000 TX is idle while TCTL.EN is clear, starts when set", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    rig.wr(reg::TCTL, 0);
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 50));
    tx.kick();
    CHECK(rig.backend.sent.empty());
    rig.wr(reg::TCTL, tctl::EN);
    CHECK(rig.backend.sent.size() == 1);
}

TEST_CASE("e1000 TX legacy checksum insertion (CSO/CSS)", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    Bytes frame = tcp_frame(100);  // TCP checksum field holds the pseudo-header sum
    tx.legacy(frame, EOP_RS | txd::CMD_IC, /*cso=*/50, /*css=*/34);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    CHECK(l4_ok(rig.backend.sent[0]));
}

TEST_CASE("e1000 TX context + data descriptors: IP and TCP checksum offload", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    Bytes frame = tcp_frame(300);
    TxRing::Context c;  // defaults describe Ethernet/IPv4/TCP
    tx.context(c);
    tx.data(Bytes(frame.begin(), frame.begin() + 54), 0, txd::POPTS_IXSM | txd::POPTS_TXSM);
    tx.data(Bytes(frame.begin() + 54, frame.end()), EOP_RS);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    const Bytes& out = rig.backend.sent[0];
    CHECK(out.size() == frame.size());
    CHECK(ipv4_header_ok(out));
    CHECK(l4_ok(out));
}

TEST_CASE("e1000 TX UDP checksum offload", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    Bytes frame = udp_frame(77);
    std::uint32_t pseudo = ref_sum(frame, 26, 34, 17 + 85);
    put_be16(frame, 40, std::uint16_t(pseudo));
    TxRing::Context c;
    c.tucso = 40;
    c.tucmd = txd::TUCMD_IP;  // UDP
    tx.context(c);
    tx.data(frame, EOP_RS, txd::POPTS_TXSM);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    CHECK(l4_ok(rig.backend.sent[0]));
    CHECK(be16(rig.backend.sent[0], 40) != 0);
}

TEST_CASE("e1000 TX TSO splits into MSS segments with fixed headers", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    const std::size_t payload = 4000, mss = 1448;
    Bytes frame = tcp_frame(payload, true, /*with_length=*/false, 0x19 /* FIN|PSH|ACK */);
    TxRing::Context c;
    c.mss = mss;
    c.paylen = payload;
    c.tucmd |= txd::TUCMD_TSE;
    tx.context(c);
    tx.data(Bytes(frame.begin(), frame.begin() + 54), txd::CMD_TSE, txd::POPTS_IXSM | txd::POPTS_TXSM);
    tx.data(Bytes(frame.begin() + 54, frame.begin() + 2054), txd::CMD_TSE);
    auto last = tx.data(Bytes(frame.begin() + 2054, frame.end()), txd::CMD_TSE | EOP_RS);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 3);
    std::size_t offset = 0;
    for (std::size_t k = 0; k < 3; ++k) {
        const Bytes& s = rig.backend.sent[k];
        std::size_t chunk = std::min(mss, payload - offset);
        INFO("segment " << k);
        CHECK(s.size() == 54 + chunk);
        CHECK(be16(s, 16) == 40 + chunk);            // IP total length
        CHECK(be16(s, 18) == 0x1234 + k);            // IP ID increments
        CHECK(be32(s, 38) == 1000 + offset);         // TCP sequence
        bool is_last = k == 2;
        CHECK(((s[47] & 0x09) != 0) == is_last);     // FIN/PSH only on the last
        CHECK((s[47] & 0x10) != 0);                  // ACK kept
        CHECK(ipv4_header_ok(s));
        CHECK(l4_ok(s));
        CHECK(std::equal(s.begin() + 54, s.end(), frame.begin() + 54 + offset));
        offset += chunk;
    }
    CHECK((tx.status(last) & txd::STA_DD) != 0);
    CHECK(rig.rd(reg::TSCTC) == 1);
    CHECK(rig.counter("tx_tso_segments") == 3);
}

TEST_CASE("e1000 TX VLAN insertion with VLE and CTRL.VME", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    rig.wr(reg::CTRL, rig.rd(reg::CTRL) | ctrl::VME);
    Bytes frame = ethernet(kPeerMac, kNicMac, 0x0800, 60);
    tx.legacy(frame, EOP_RS | txd::CMD_VLE, 0, 0, /*special=*/0x2005);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    const Bytes& out = rig.backend.sent[0];
    CHECK(out.size() == frame.size() + 4);
    CHECK(be16(out, 12) == 0x8100);
    CHECK(be16(out, 14) == 0x2005);
    CHECK(be16(out, 16) == 0x0800);
}

TEST_CASE("e1000 TX pads short frames with TCTL.PSP", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    rig.wr(reg::TCTL, tctl::EN | tctl::PSP);
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0806, 28));
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 1);
    CHECK(rig.backend.sent[0].size() == 60);
}

TEST_CASE("e1000 TX backpressure: Busy keeps the frame, resume_tx sends it", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    rig.backend.result = net::Backend::SendResult::Busy;
    Bytes f1 = ethernet(kPeerMac, kNicMac, 0x0800, 100, 1);
    Bytes f2 = ethernet(kPeerMac, kNicMac, 0x0800, 100, 2);
    auto i1 = tx.legacy(f1);
    auto i2 = tx.legacy(f2);
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.rd(reg::TDH) == i1);
    CHECK((tx.status(i1) & txd::STA_DD) == 0);
    tx.kick();  // another TDT write while blocked changes nothing
    CHECK(rig.backend.refused == 1);
    rig.backend.result = net::Backend::SendResult::Sent;
    rig.nic.resume_tx();
    REQUIRE(rig.backend.sent.size() == 2);
    CHECK(rig.backend.sent[0] == f1);
    CHECK(rig.backend.sent[1] == f2);
    CHECK((tx.status(i2) & txd::STA_DD) != 0);
    CHECK(rig.rd(reg::TDH) == 2);
    CHECK(rig.counter("tx_busy") == 1);
}

TEST_CASE("e1000 TX backpressure in the middle of a TSO burst", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    Bytes frame = tcp_frame(3000, true, false);
    TxRing::Context c;
    c.mss = 1000;
    c.tucmd |= txd::TUCMD_TSE;
    tx.context(c);
    tx.data(frame, txd::CMD_TSE | EOP_RS, txd::POPTS_IXSM | txd::POPTS_TXSM);
    tx.kick();
    REQUIRE(rig.backend.sent.size() == 3);
    rig.backend.sent.clear();

    tx.context(c);
    auto eop = tx.data(frame, txd::CMD_TSE | EOP_RS, txd::POPTS_IXSM | txd::POPTS_TXSM);
    // Let one segment through, then refuse.
    rig.backend.busy_after = 1;
    tx.kick();
    CHECK(rig.backend.sent.size() == 1);
    CHECK(rig.rd(reg::TDH) == eop);
    rig.backend.result = net::Backend::SendResult::Sent;
    rig.nic.resume_tx();
    REQUIRE(rig.backend.sent.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) CHECK(be32(rig.backend.sent[k], 38) == 1000 + 1000 * k);
    CHECK((tx.status(eop) & txd::STA_DD) != 0);
    CHECK(rig.rd(reg::TDH) == tx.next());
}

TEST_CASE("e1000 TX Dropped by the backend still completes the descriptor", "[e1000][tx]") {
    E1000Rig rig;
    TxRing tx(rig);
    rig.backend.result = net::Backend::SendResult::Dropped;
    auto i = tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 80));
    tx.kick();
    CHECK((tx.status(i) & txd::STA_DD) != 0);
    CHECK(rig.counter("tx_dropped_backend") == 1);
}

TEST_CASE("e1000 TX interrupt delay (IDE with TIDV/TADV)", "[e1000][tx]") {
    E1000Rig rig;
    rig.use_fake_timer();
    TxRing tx(rig);
    rig.wr(reg::IMS, icr::TXDW);
    rig.wr(reg::TIDV, 8);   // 8.192 us after the latest descriptor
    rig.wr(reg::TADV, 20);  // 20.48 us after the first
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 80), EOP_RS | txd::CMD_IDE);
    tx.kick();
    CHECK_FALSE(rig.irq.level);
    rig.advance_ns(5'000);
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 80), EOP_RS | txd::CMD_IDE);
    tx.kick();
    rig.advance_ns(5'000);  // 5 us after the second: TIDV not yet expired
    CHECK_FALSE(rig.irq.level);
    rig.advance_ns(4'000);
    CHECK(rig.irq.level);
    CHECK((rig.rd(reg::ICR) & icr::TXDW) != 0);

    // Without IDE the cause is immediate.
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 80));
    tx.kick();
    CHECK(rig.irq.level);
    rig.rd(reg::ICR);

    // TIDV.FPD flushes a pending delay.
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 80), EOP_RS | txd::CMD_IDE);
    tx.kick();
    CHECK_FALSE(rig.irq.level);
    rig.wr(reg::TIDV, 8 | DELAY_FPD);
    CHECK(rig.irq.level);
}

TEST_CASE("e1000 TX TADV bounds a stream of delayed write-backs", "[e1000][tx]") {
    E1000Rig rig;
    rig.use_fake_timer();
    TxRing tx(rig, 64);
    rig.wr(reg::IMS, icr::TXDW);
    rig.wr(reg::TIDV, 8);
    rig.wr(reg::TADV, 20);
    for (int k = 0; k < 4; ++k) {  // one every 5 us: TIDV keeps restarting
        tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 80), EOP_RS | txd::CMD_IDE);
        tx.kick();
        rig.advance_ns(5'000);
        CHECK_FALSE(rig.irq.level);
    }
    rig.advance_ns(1'000);  // 21 us after the first
    CHECK(rig.irq.level);
}
