// A hostile or broken guest must not crash the model, make it touch memory
// outside guest RAM, or loop forever: every case ends in a counter.
#include <catch2/catch.hpp>

#include <random>

#include "e1000_ring_builder.hpp"

using namespace xover;
using namespace xover::e1000;
using namespace xover::test;

namespace {
constexpr std::uint8_t EOP_RS = txd::CMD_EOP | txd::CMD_RS;
Bytes to_nic(std::size_t payload = 100) { return ethernet(kNicMac, kPeerMac, 0x0800, payload); }
}  // namespace

TEST_CASE("e1000 hostile: TX descriptor ring outside guest memory", "[e1000][hostile]") {
    E1000Rig rig(1 << 20);
    rig.wr(reg::TDBAL, 0xFFFFF000);
    rig.wr(reg::TDBAH, 0xFFFFFFFF);
    rig.wr(reg::TDLEN, 128);
    rig.wr(reg::TCTL, tctl::EN);
    rig.wr(reg::TDT, 5);
    CHECK(rig.backend.sent.empty());
    CHECK(rig.counter("tx_bad_address") == 5);
    CHECK(rig.rd(reg::TDH) == 5);
}

TEST_CASE("e1000 hostile: TX buffer outside guest memory drops the frame", "[e1000][hostile]") {
    E1000Rig rig(1 << 20);
    TxRing tx(rig);
    auto i = tx.legacy_raw(0xFFFFFFFFFFFFFF00ull, 1000);
    tx.legacy_raw((1 << 20) - 10, 100);  // straddles the end of RAM
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 60));
    tx.kick();
    CHECK(rig.backend.sent.size() == 1);
    CHECK(rig.counter("tx_bad_address") == 2);
    CHECK((tx.status(i) & txd::STA_DD) != 0);  // still completed, like a master abort
}

TEST_CASE("e1000 hostile: zero-length and runt TX frames", "[e1000][hostile]") {
    E1000Rig rig;
    TxRing tx(rig);
    tx.legacy_raw(0x40000, 0);
    tx.legacy_raw(0x40000, 5);
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.counter("tx_malformed") == 2);
    CHECK(rig.rd(reg::TDH) == 2);
}

TEST_CASE("e1000 hostile: endless frame without EOP is capped", "[e1000][hostile]") {
    E1000Rig rig(8 << 20);
    TxRing tx(rig, 256);
    for (int k = 0; k < 200; ++k) tx.legacy_raw(0x100000, 0xFFFF, 0);  // 200 x 64 KiB, no EOP
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.counter("tx_oversize") == 1);
    tx.legacy_raw(0x100000, 100, EOP_RS);  // the runaway frame ends here: dropped
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 60));
    tx.kick();
    CHECK(rig.backend.sent.size() == 1);
}

TEST_CASE("e1000 hostile: huge extended data descriptor lengths", "[e1000][hostile]") {
    E1000Rig rig;
    TxRing tx(rig);
    TxRing::Context c;
    tx.context(c);
    Bytes small(20, 1);
    auto d = tx.data(small, EOP_RS);
    // Rewrite its length to the 20-bit maximum.
    std::uint32_t dw2 = 0xFFFFF | std::uint32_t(txd::DTYP_DATA) << 20 | std::uint32_t(EOP_RS | txd::CMD_DEXT) << 24;
    rig.memory.poke(0x10000 + 16 * d + 8, &dw2, 4);
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.counter("tx_oversize") == 1);
}

TEST_CASE("e1000 hostile: ring size 0, unaligned TDLEN, TDT/TDH beyond the ring", "[e1000][hostile]") {
    E1000Rig rig;
    TxRing tx(rig, 8);
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 60));
    rig.wr(reg::TDLEN, 100);  // below one 128-byte unit: size 0
    tx.kick();
    CHECK(rig.backend.sent.empty());
    rig.wr(reg::TDLEN, 128 + 100);  // low bits ignored: 8 descriptors
    CHECK(rig.rd(reg::TDLEN) == 128);
    rig.wr(reg::TDT, 200);  // beyond the ring
    CHECK(rig.backend.sent.empty());
    CHECK(rig.counter("tx_bad_ring") == 1);
    rig.wr(reg::TDH, 9);  // head beyond the ring
    rig.wr(reg::TDT, 1);
    CHECK(rig.counter("tx_bad_ring") == 2);
    rig.wr(reg::TDH, 0);
    rig.wr(reg::TDT, 1);
    CHECK(rig.backend.sent.size() == 1);
}

TEST_CASE("e1000 hostile: bad TSO contexts are rejected", "[e1000][hostile]") {
    E1000Rig rig;
    TxRing tx(rig);
    Bytes frame = tcp_frame(3000, true, false);
    TxRing::Context c;
    c.tucmd |= txd::TUCMD_TSE;
    SECTION("MSS 0") { c.mss = 0; }
    SECTION("MSS 1: one descriptor would become thousands of frames") { c.mss = 1; }
    SECTION("MSS 7, below the smallest segment Linux asks for") { c.mss = 7; }
    SECTION("header longer than the frame") {
        c.mss = 1000;
        c.hdrlen = 255;
        frame.resize(100);
    }
    SECTION("offsets past the header") {
        c.mss = 1000;
        c.tucss = 250;
        c.tucso = 254;
    }
    tx.context(c);
    tx.data(frame, txd::CMD_TSE | EOP_RS, txd::POPTS_IXSM | txd::POPTS_TXSM);
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.rd(reg::TSCTFC) == 1);
    CHECK(rig.counter("tx_bad_offload") == 1);
}

TEST_CASE("e1000 hostile: checksum offsets outside the frame", "[e1000][hostile]") {
    E1000Rig rig;
    TxRing tx(rig);
    TxRing::Context c;
    c.tucss = 200;
    c.tucso = 250;
    c.ipcso = 254;
    tx.context(c);
    tx.data(ethernet(kPeerMac, kNicMac, 0x0800, 40), EOP_RS, txd::POPTS_IXSM | txd::POPTS_TXSM);
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 40), EOP_RS | txd::CMD_IC, 255, 254);
    tx.kick();
    CHECK(rig.backend.sent.size() == 2);  // sent without the bad insertion
    CHECK(rig.counter("tx_bad_offload") == 3);
}

TEST_CASE("e1000 hostile: RX descriptors or buffers outside guest memory", "[e1000][hostile]") {
    E1000Rig rig(4 << 20);
    SECTION("descriptor ring") {
        rig.wr(reg::RDBAL, 0xFFFFFF00);
        rig.wr(reg::RDBAH, 0x7);
        rig.wr(reg::RDLEN, 128);
        rig.wr(reg::RDT, 5);
        rig.wr(reg::RCTL, rctl::EN | rctl::BAM);
    }
    SECTION("buffer address") {
        RxRing rx(rig);
        std::uint64_t bad = 0xDEADBEEF0000ull;
        rig.memory.poke(0x20000, &bad, 8);
    }
    SECTION("buffer straddling the end of RAM") {
        RxRing rx(rig);
        std::uint64_t edge = (4 << 20) - 100;
        rig.memory.poke(0x20000, &edge, 8);
    }
    CHECK(rig.nic.deliver(to_nic()));  // dropped, not kept forever
    CHECK(rig.rd(reg::RDH) == 0);
    CHECK(rig.counter("rx_bad_address") == 1);
}

TEST_CASE("e1000 hostile: RX ring size 0 and RDH/RDT out of range", "[e1000][hostile]") {
    E1000Rig rig;
    RxRing rx(rig);
    rig.wr(reg::RDLEN, 0);
    CHECK_FALSE(rig.nic.deliver(to_nic()));
    rig.wr(reg::RDLEN, 128);
    rig.wr(reg::RDH, 50);
    CHECK_FALSE(rig.nic.deliver(to_nic()));
    CHECK(rig.counter("rx_bad_ring") == 1);
    rig.wr(reg::RDH, 0);
    rig.wr(reg::RDT, 0xFFFF);
    CHECK_FALSE(rig.nic.deliver(to_nic()));
    rig.wr(reg::RDT, 3);
    CHECK(rig.nic.deliver(to_nic()));
}

TEST_CASE("e1000 hostile: a frame bigger than the whole ring is dropped", "[e1000][hostile]") {
    E1000Rig rig;
    RxRing rx(rig, 8, rctl::BAM | rctl::LPE, 256);  // 7 x 256 bytes at most
    CHECK(rig.nic.deliver(to_nic(4000)));
    CHECK(rig.rd(reg::RDH) == 0);
    CHECK(rig.counter("rx_oversize") == 1);
}

TEST_CASE("e1000 hostile: runt RX frames and DMA with bus mastering off", "[e1000][hostile]") {
    E1000Rig rig;
    RxRing rx(rig);
    Bytes runt(10, 0xff);
    CHECK(rig.nic.deliver(runt));
    CHECK(rig.counter("rx_malformed") == 1);
    std::uint8_t command[2] = {0x03, 0x00};  // bus master off
    rig.nic.config_write(0x04, command);
    CHECK(rig.nic.deliver(to_nic()));
    CHECK(rig.rd(reg::RDH) == 0);
    TxRing tx(rig);
    tx.legacy(ethernet(kPeerMac, kNicMac, 0x0800, 60));
    tx.kick();
    CHECK(rig.backend.sent.empty());
    CHECK(rig.counter("dma_without_bus_master") == 2);
}

TEST_CASE("e1000 hostile: random register writes and random rings", "[e1000][hostile]") {
    E1000Rig rig(1 << 20);
    std::mt19937 rng(1234);
    // Random garbage in RAM, including where rings and buffers might point.
    for (auto& b : rig.memory.bytes) b = std::uint8_t(rng());
    rig.use_fake_timer();
    const std::uint32_t interesting[] = {reg::CTRL, reg::EECD, reg::EERD, reg::MDIC, reg::ICR, reg::ICS, reg::IMS,
                                         reg::IMC, reg::ITR, reg::RCTL, reg::RDBAL, reg::RDBAH, reg::RDLEN, reg::RDH,
                                         reg::RDT, reg::RDTR, reg::RADV, reg::TCTL, reg::TDBAL, reg::TDBAH,
                                         reg::TDLEN, reg::TDH, reg::TDT, reg::TIDV, reg::TADV, reg::VET};
    for (int k = 0; k < 20000; ++k) {
        std::uint32_t offset = interesting[rng() % std::size(interesting)];
        std::uint32_t value = rng();
        switch (offset) {
        case reg::CTRL: value &= ~ctrl::RST; break;  // resets are boring
        case reg::RDBAH: case reg::TDBAH: value &= 1; break;
        case reg::RDBAL: case reg::TDBAL: value &= 0xFFFFF; break;
        case reg::RDLEN: case reg::TDLEN: value &= 0x7FF; break;
        case reg::RDH: case reg::RDT: case reg::TDH: case reg::TDT: value &= 0x7F; break;
        default: break;
        }
        if (rng() % 4 == 0) offset = (rng() % (kMmioSize / 4)) * 4;
        rig.wr(offset, value);
        if (k % 3 == 0) rig.rd(offset);
        if (k % 5 == 0) {
            Bytes f = ethernet(rng() % 2 ? kNicMac : net::MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
                               kPeerMac, std::uint16_t(rng()), rng() % 3000);
            rig.nic.deliver(f);
        }
        if (k % 7 == 0) {
            rig.backend.result = rng() % 3 == 0 ? net::Backend::SendResult::Busy : net::Backend::SendResult::Sent;
            rig.nic.resume_tx();
        }
        if (k % 11 == 0) rig.advance_ns(rng() % 100000);
    }
    SUCCEED("survived");
}
