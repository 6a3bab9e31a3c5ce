// e1000 register file: PCI identity, CTRL/STATUS, reset, EEPROM (EERD and
// Microwire bit-banging), PHY over MDIC, interrupts, filters storage,
// statistics, the I/O BAR window, link changes.
#include <catch2/catch.hpp>

#include "e1000_ring_builder.hpp"

using namespace xover;
using namespace xover::e1000;
using xover::test::E1000Rig;

namespace {

std::uint32_t config32(E1000& nic, std::uint32_t offset) {
    std::uint8_t b[4];
    nic.config_read(offset, b);
    return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24;
}

// Reads one EEPROM word by bit-banging EECD the way a Microwire driver
// does: request/grant, CS, start bit + READ opcode (110b), 6 address bits
// MSB first, then 16 data bits clocked out on DO.
std::uint16_t microwire_read(E1000Rig& rig, unsigned address) {
    std::uint32_t eecd_value = rig.rd(reg::EECD) | eecd::REQ;
    rig.wr(reg::EECD, eecd_value);
    REQUIRE((rig.rd(reg::EECD) & eecd::GNT) != 0);
    eecd_value &= ~(eecd::DI | eecd::SK);
    eecd_value |= eecd::CS;
    rig.wr(reg::EECD, eecd_value);
    auto shift_out = [&](std::uint32_t bits, unsigned count) {
        for (int i = int(count) - 1; i >= 0; --i) {
            eecd_value = (bits >> i) & 1 ? eecd_value | eecd::DI : eecd_value & ~eecd::DI;
            rig.wr(reg::EECD, eecd_value);
            rig.wr(reg::EECD, eecd_value | eecd::SK);
            rig.wr(reg::EECD, eecd_value);
        }
        eecd_value &= ~eecd::DI;
        rig.wr(reg::EECD, eecd_value);
    };
    shift_out(0b110, 3);
    shift_out(address, 6);
    std::uint16_t data = 0;
    for (int i = 0; i < 16; ++i) {
        rig.wr(reg::EECD, eecd_value | eecd::SK);
        data = std::uint16_t(data << 1 | ((rig.rd(reg::EECD) & eecd::DO) ? 1 : 0));
        rig.wr(reg::EECD, eecd_value);
    }
    // Release: CS low, then drop the request.
    rig.wr(reg::EECD, eecd_value & ~eecd::CS);
    rig.wr(reg::EECD, eecd_value & ~(eecd::CS | eecd::REQ));
    return data;
}

std::uint16_t eerd_read(E1000Rig& rig, unsigned address) {
    rig.wr(reg::EERD, eerd::START | address << eerd::ADDR_SHIFT);
    std::uint32_t v = rig.rd(reg::EERD);
    REQUIRE((v & eerd::DONE) != 0);
    return std::uint16_t(v >> eerd::DATA_SHIFT);
}

std::uint32_t mdic_read(E1000Rig& rig, unsigned reg_number, unsigned phy = kPhyAddress) {
    rig.wr(reg::MDIC, mdic::OP_READ | phy << mdic::PHY_SHIFT | reg_number << mdic::REG_SHIFT);
    return rig.rd(reg::MDIC);
}

}  // namespace

TEST_CASE("e1000 PCI identity and BARs", "[e1000]") {
    E1000Rig rig;
    CHECK(config32(rig.nic, 0x00) == 0x100E8086);
    CHECK((config32(rig.nic, 0x08) >> 8) == 0x020000);
    CHECK(config32(rig.nic, 0x2C) == 0x001E8086);
    CHECK(rig.nic.bar(0).kind == vmm::PciBar::Kind::Mmio32);
    CHECK(rig.nic.bar(0).size == 128 * 1024);
    CHECK(rig.nic.bar(1).kind == vmm::PciBar::Kind::Io);
    CHECK(rig.nic.bar(1).size == 64);
    std::uint8_t pin = 0;
    rig.nic.config_read(0x3D, {&pin, 1});
    CHECK(pin == 1);
}

TEST_CASE("e1000 STATUS reports link up at 1000 Mb/s full duplex", "[e1000]") {
    E1000Rig rig;
    std::uint32_t s = rig.rd(reg::STATUS);
    CHECK((s & status::LU) != 0);
    CHECK((s & status::FD) != 0);
    CHECK((s & (3u << 6)) == status::SPEED_1000);
    rig.wr(reg::STATUS, 0);  // read-only
    CHECK(rig.rd(reg::STATUS) == s);
}

TEST_CASE("e1000 link_changed updates STATUS.LU, the PHY and raises LSC", "[e1000]") {
    E1000Rig rig;
    rig.wr(reg::IMS, icr::LSC);
    rig.backend.link = false;
    rig.nic.link_changed();
    CHECK((rig.rd(reg::STATUS) & status::LU) == 0);
    CHECK((mdic_read(rig, phy_reg::BMSR) & bmsr::LINK) == 0);
    CHECK(rig.irq.level);
    CHECK((rig.rd(reg::ICR) & icr::LSC) != 0);
    CHECK_FALSE(rig.irq.level);
    rig.backend.link = true;
    rig.nic.link_changed();
    CHECK((rig.rd(reg::STATUS) & status::LU) != 0);
    CHECK((mdic_read(rig, phy_reg::BMSR) & bmsr::LINK) != 0);
}

TEST_CASE("e1000 CTRL.RST restores defaults and self-clears", "[e1000]") {
    E1000Rig rig;
    rig.wr(reg::CTRL, ctrl::SLU | ctrl::FD);
    rig.wr(reg::IMS, 0xFFFF);
    rig.wr(reg::RCTL, rctl::EN);
    rig.wr(reg::TDLEN, 1024);
    rig.wr(reg::RAL(0), 0x11223344);
    rig.wr(reg::MTA + 8, 0xFFFF);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK(rig.irq.level);
    rig.wr(reg::MDIC, mdic::OP_WRITE | kPhyAddress << mdic::PHY_SHIFT | phy_reg::ANAR << mdic::REG_SHIFT | 0x0DE1);

    rig.wr(reg::CTRL, ctrl::RST | ctrl::SLU);
    CHECK((rig.rd(reg::CTRL) & (ctrl::RST | ctrl::SLU)) == 0);
    CHECK(rig.rd(reg::IMS) == 0);
    CHECK(rig.rd(reg::ICR) == 0);
    CHECK_FALSE(rig.irq.level);
    CHECK(rig.rd(reg::RCTL) == 0);
    CHECK(rig.rd(reg::TDLEN) == 0);
    CHECK(rig.rd(reg::MTA + 8) == 0);
    // The MAC is reloaded from the EEPROM into RAL0/RAH0 with AV.
    CHECK(rig.rd(reg::RAL(0)) == 0x12005452);
    CHECK(rig.rd(reg::RAH(0)) == (0x5634 | RAH_AV));
    CHECK((mdic_read(rig, phy_reg::ANAR) & 0xFFFF) == 0x01E1);
}

TEST_CASE("e1000 EEPROM contents and checksum", "[e1000]") {
    E1000Rig rig;
    const Eeprom& e = rig.nic.eeprom();
    std::uint16_t sum = 0;
    for (unsigned i = 0; i < Eeprom::kWords; ++i) sum = std::uint16_t(sum + e.word(i));
    CHECK(sum == 0xBABA);
    CHECK(e.word(0) == 0x5452);
    CHECK(e.word(1) == 0x1200);
    CHECK(e.word(2) == 0x5634);
    CHECK(e.word(0x0D) == 0x100E);
    CHECK(e.word(0x0E) == 0x8086);
    CHECK((e.word(0x0A) >> 14) == 0b01);  // valid signature
}

TEST_CASE("e1000 EERD reads EEPROM words", "[e1000]") {
    E1000Rig rig;
    CHECK(eerd_read(rig, 0) == 0x5452);
    CHECK(eerd_read(rig, 2) == 0x5634);
    std::uint16_t sum = 0;
    for (unsigned i = 0; i < 64; ++i) sum = std::uint16_t(sum + eerd_read(rig, i));
    CHECK(sum == 0xBABA);
    CHECK(eerd_read(rig, 200) == 0xFFFF);  // past the 64-word part
    rig.wr(reg::EERD, 0);                    // no START: DONE clears
    CHECK((rig.rd(reg::EERD) & eerd::DONE) == 0);
}

TEST_CASE("e1000 EECD Microwire read sequence", "[e1000]") {
    E1000Rig rig;
    std::uint32_t eecd_value = rig.rd(reg::EECD);
    CHECK((eecd_value & eecd::PRES) != 0);
    CHECK((eecd_value & (1u << 9)) == 0);  // EE_SIZE 0: 64 words, 6 address bits
    CHECK((eecd_value & eecd::GNT) == 0);
    std::uint16_t sum = 0;
    for (unsigned i = 0; i < 64; ++i) {
        std::uint16_t w = microwire_read(rig, i);
        CHECK(w == rig.nic.eeprom().word(i));
        sum = std::uint16_t(sum + w);
    }
    CHECK(sum == 0xBABA);
    CHECK((rig.rd(reg::EECD) & eecd::GNT) == 0);  // released
}

TEST_CASE("e1000 EECD pins are ignored without EE_REQ", "[e1000]") {
    E1000Rig rig;
    // Clock a full READ of word 0 without requesting the interface: DO stays low.
    std::uint32_t v = eecd::CS;
    for (unsigned bit : {1u, 1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u}) {
        std::uint32_t d = bit ? eecd::DI : 0;
        rig.wr(reg::EECD, v | d);
        rig.wr(reg::EECD, v | d | eecd::SK);
    }
    bool any = false;
    for (int i = 0; i < 16; ++i) {
        rig.wr(reg::EECD, v);
        rig.wr(reg::EECD, v | eecd::SK);
        any |= (rig.rd(reg::EECD) & eecd::DO) != 0;
    }
    CHECK_FALSE(any);
}

TEST_CASE("e1000 PHY registers through MDIC", "[e1000]") {
    E1000Rig rig;
    std::uint32_t v = mdic_read(rig, phy_reg::PHYID1);
    CHECK((v & mdic::READY) != 0);
    CHECK((v & mdic::ERROR) == 0);
    CHECK((v & 0xFFFF) == 0x0141);
    CHECK(((mdic_read(rig, phy_reg::PHYID2) & 0xFFFF) & 0xFFF0) == 0x0C20);
    std::uint16_t bmsr_value = std::uint16_t(mdic_read(rig, phy_reg::BMSR));
    CHECK((bmsr_value & bmsr::LINK) != 0);
    CHECK((bmsr_value & bmsr::AN_COMPLETE) != 0);
    std::uint16_t pssr_value = std::uint16_t(mdic_read(rig, phy_reg::PSSR));
    CHECK((pssr_value & 0xC000) == pssr::SPEED_1000);
    CHECK((pssr_value & pssr::FULL_DUPLEX) != 0);
    CHECK((pssr_value & pssr::LINK) != 0);
    CHECK((pssr_value & pssr::RESOLVED) != 0);
    CHECK((mdic_read(rig, phy_reg::ANLPAR) & 0x0400) != 0);  // partner does PAUSE
    CHECK((mdic_read(rig, phy_reg::GBSR) & 0x0800) != 0);    // partner 1000 FD

    // Writes: ANAR stores; BMCR restart-AN and reset bits self-clear; read-only regs ignore.
    rig.wr(reg::MDIC, mdic::OP_WRITE | kPhyAddress << mdic::PHY_SHIFT | phy_reg::ANAR << mdic::REG_SHIFT | 0x0DE1);
    CHECK((rig.rd(reg::MDIC) & mdic::READY) != 0);
    CHECK((mdic_read(rig, phy_reg::ANAR) & 0xFFFF) == 0x0DE1);
    rig.wr(reg::MDIC, mdic::OP_WRITE | kPhyAddress << mdic::PHY_SHIFT | phy_reg::BMCR << mdic::REG_SHIFT |
                          bmcr::AN_ENABLE | bmcr::RESTART_AN | bmcr::RESET);
    CHECK((mdic_read(rig, phy_reg::BMCR) & 0xFFFF) == bmcr::AN_ENABLE);
    CHECK((mdic_read(rig, phy_reg::ANAR) & 0xFFFF) == 0x0DE1);  // soft reset keeps configuration
    rig.wr(reg::MDIC, mdic::OP_WRITE | kPhyAddress << mdic::PHY_SHIFT | phy_reg::PHYID1 << mdic::REG_SHIFT | 0x1234);
    CHECK((mdic_read(rig, phy_reg::PHYID1) & 0xFFFF) == 0x0141);

    // Another PHY address answers with ERROR.
    CHECK((mdic_read(rig, phy_reg::PHYID1, 2) & mdic::ERROR) != 0);

    // CTRL.PHY_RST restores PHY defaults.
    rig.wr(reg::CTRL, rig.rd(reg::CTRL) | ctrl::PHY_RST);
    rig.wr(reg::CTRL, rig.rd(reg::CTRL) & ~ctrl::PHY_RST);
    CHECK((mdic_read(rig, phy_reg::ANAR) & 0xFFFF) == 0x01E1);

    // MDIC.I raises MDAC.
    rig.wr(reg::MDIC, mdic::OP_READ | mdic::INT | kPhyAddress << mdic::PHY_SHIFT | phy_reg::BMSR << mdic::REG_SHIFT);
    CHECK((rig.rd(reg::ICR) & icr::MDAC) != 0);
}

TEST_CASE("e1000 ICR is read-to-clear and the line follows ICR & IMS", "[e1000]") {
    E1000Rig rig;
    rig.wr(reg::ICS, icr::TXDW | icr::RXT0);
    CHECK_FALSE(rig.irq.level);  // masked
    rig.wr(reg::IMS, icr::RXT0);
    CHECK(rig.irq.level);
    CHECK(rig.rd(reg::IMS) == icr::RXT0);
    rig.wr(reg::IMC, icr::RXT0);
    CHECK_FALSE(rig.irq.level);
    CHECK(rig.rd(reg::IMS) == 0);
    rig.wr(reg::IMS, icr::TXDW | icr::RXT0);
    CHECK(rig.irq.level);
    CHECK(rig.rd(reg::ICR) == (icr::TXDW | icr::RXT0));
    CHECK_FALSE(rig.irq.level);
    CHECK(rig.rd(reg::ICR) == 0);

    // Write-1-to-clear.
    rig.wr(reg::IMS, icr::LSC);
    rig.wr(reg::ICS, icr::TXDW | icr::LSC);
    CHECK(rig.irq.level);
    rig.wr(reg::ICR, icr::TXDW);
    CHECK(rig.irq.level);  // LSC still pending and enabled
    rig.wr(reg::ICR, icr::LSC);
    CHECK_FALSE(rig.irq.level);
    CHECK(rig.counter("interrupts") == 3);
}

TEST_CASE("e1000 INTx disable in PCI COMMAND masks the line", "[e1000]") {
    E1000Rig rig;
    rig.wr(reg::IMS, icr::TXDW);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK(rig.irq.level);
    std::uint8_t command[2] = {0x07, 0x04};  // INTx disable
    rig.nic.config_write(0x04, command);
    CHECK_FALSE(rig.irq.level);
    command[1] = 0;
    rig.nic.config_write(0x04, command);
    CHECK(rig.irq.level);
}

TEST_CASE("e1000 ITR spaces interrupt assertions", "[e1000]") {
    E1000Rig rig;
    rig.use_fake_timer();
    rig.wr(reg::ITR, 1000);  // 256 us
    rig.wr(reg::IMS, icr::TXDW);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK(rig.irq.level);
    CHECK(rig.irq.raised == 1);
    rig.rd(reg::ICR);
    CHECK_FALSE(rig.irq.level);
    rig.advance_ns(10'000);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK_FALSE(rig.irq.level);  // held back
    CHECK(rig.timer.armed != 0);
    rig.advance_ns(100'000);
    CHECK_FALSE(rig.irq.level);  // still inside the interval
    rig.advance_ns(146'000);
    CHECK(rig.irq.level);  // 256 us after the first
    CHECK(rig.irq.raised == 2);

    // Cleared while held back: nothing fires later.
    rig.rd(reg::ICR);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK_FALSE(rig.irq.level);
    rig.wr(reg::ICR, icr::TXDW);
    rig.advance_ns(1'000'000);
    CHECK_FALSE(rig.irq.level);
    CHECK(rig.irq.raised == 2);

    // ITR 0: no throttling.
    rig.wr(reg::ITR, 0);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK(rig.irq.level);
    rig.rd(reg::ICR);
    rig.wr(reg::ICS, icr::TXDW);
    CHECK(rig.irq.level);
}

TEST_CASE("e1000 receive address, multicast and VLAN tables are plain storage", "[e1000]") {
    E1000Rig rig;
    for (unsigned i = 0; i < kReceiveAddresses; ++i) {
        rig.wr(reg::RAL(i), 0x01020300 + i);
        rig.wr(reg::RAH(i), 0xFFFFFFFF);
        CHECK(rig.rd(reg::RAL(i)) == 0x01020300 + i);
        CHECK(rig.rd(reg::RAH(i)) == (RAH_AV | 0x3FFFF));  // reserved bits read 0
    }
    for (unsigned i = 0; i < kMulticastTableWords; ++i) rig.wr(reg::MTA + 4 * i, i * 7);
    for (unsigned i = 0; i < kVlanFilterWords; ++i) rig.wr(reg::VFTA + 4 * i, ~i);
    for (unsigned i = 0; i < kMulticastTableWords; ++i) CHECK(rig.rd(reg::MTA + 4 * i) == i * 7);
    for (unsigned i = 0; i < kVlanFilterWords; ++i) CHECK(rig.rd(reg::VFTA + 4 * i) == ~i);
    for (std::uint32_t r : {reg::FCAL, reg::FCAH, reg::FCT, reg::FCTTV, reg::PBA, reg::LEDCTL, reg::WUC, reg::TIPG,
                            reg::TXDCTL, reg::RXDCTL, reg::RADV, reg::TADV, reg::RDTR, reg::TIDV, reg::CTRL_EXT}) {
        rig.wr(r, 0x1357);
        CHECK(rig.rd(r) == 0x1357);
    }
}

TEST_CASE("e1000 ring registers mask to what hardware keeps", "[e1000]") {
    E1000Rig rig;
    rig.wr(reg::RDBAL, 0x12345678);
    CHECK(rig.rd(reg::RDBAL) == 0x12345670);
    rig.wr(reg::TDBAL, 0xFFFFFFFF);
    CHECK(rig.rd(reg::TDBAL) == 0xFFFFFFF0);
    rig.wr(reg::RDBAH, 0xAB);
    CHECK(rig.rd(reg::RDBAH) == 0xAB);
    rig.wr(reg::RDLEN, 1000);
    CHECK(rig.rd(reg::RDLEN) == 896);
    rig.wr(reg::TDLEN, 0xFFFFFFFF);
    CHECK(rig.rd(reg::TDLEN) == 0xFFF80);
    rig.wr(reg::RDT, 0x12345);
    CHECK(rig.rd(reg::RDT) == 0x2345);
    rig.wr(reg::ITR, 0xFFFFFFFF);
    CHECK(rig.rd(reg::ITR) == 0xFFFF);
}

TEST_CASE("e1000 RDT and RCTL.EN writes tell the backend about buffers", "[e1000]") {
    E1000Rig rig;
    unsigned before = rig.backend.rx_space_calls;
    rig.wr(reg::RCTL, rctl::EN);
    rig.wr(reg::RDT, 3);
    CHECK(rig.backend.rx_space_calls == before + 2);
}

TEST_CASE("e1000 statistics are read-to-clear, 64-bit ones clear on the high half", "[e1000]") {
    E1000Rig rig;
    test::TxRing tx(rig);
    tx.legacy(test::ethernet(test::kPeerMac, test::kNicMac, 0x0800, 100));
    tx.legacy(test::ethernet(net::MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, test::kNicMac, 0x0806, 46));
    tx.kick();
    CHECK(rig.rd(reg::GPTC) == 2);
    CHECK(rig.rd(reg::GPTC) == 0);
    CHECK(rig.rd(reg::TPT) == 2);
    CHECK(rig.rd(reg::BPTC) == 1);
    CHECK(rig.rd(reg::GOTCL) == 114 + 4 + 60 + 4);
    CHECK(rig.rd(reg::GOTCL) == 114 + 4 + 60 + 4);  // low half does not clear
    CHECK(rig.rd(reg::GOTCH) == 0);
    CHECK(rig.rd(reg::GOTCL) == 0);
    CHECK(rig.rd(reg::PTC127) == 1);
    CHECK(rig.rd(reg::PTC64) == 1);
    rig.wr(reg::GPTC, 55);  // read-only
    CHECK(rig.rd(reg::GPTC) == 0);
    for (std::uint32_t off = reg::STATS_FIRST; off <= reg::STATS_LAST; off += 4) rig.rd(off);
    for (std::uint32_t off = reg::STATS_FIRST; off <= reg::STATS_LAST; off += 4) CHECK(rig.rd(off) == 0);
}

TEST_CASE("e1000 I/O BAR reaches registers through IOADDR/IODATA", "[e1000]") {
    E1000Rig rig;
    vmm::IoDevice* io = rig.nic.bar(1).handler;
    REQUIRE(io != nullptr);
    auto out32 = [&](std::uint64_t port, std::uint32_t v) {
        std::uint8_t b[4] = {std::uint8_t(v), std::uint8_t(v >> 8), std::uint8_t(v >> 16), std::uint8_t(v >> 24)};
        io->write(port, b);
    };
    auto in32 = [&](std::uint64_t port) {
        std::uint8_t b[4];
        io->read(port, b);
        return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24;
    };
    out32(0, reg::STATUS);
    CHECK(in32(0) == reg::STATUS);
    CHECK((in32(4) & status::LU) != 0);
    out32(0, reg::IMS);
    out32(4, icr::RXT0);
    CHECK(rig.rd(reg::IMS) == icr::RXT0);
    CHECK(in32(8) == 0);  // reserved
}

TEST_CASE("e1000 MMIO BAR handles narrow and wide accesses", "[e1000]") {
    E1000Rig rig;
    vmm::IoDevice* mmio = rig.nic.bar(0).handler;
    REQUIRE(mmio != nullptr);
    std::uint8_t w4[4] = {0x78, 0x56, 0x34, 0x12};
    mmio->write(reg::FCAL, w4);
    std::uint8_t r2[2];
    mmio->read(reg::FCAL + 2, r2);
    CHECK(r2[0] == 0x34);
    CHECK(r2[1] == 0x12);
    std::uint8_t w1[1] = {0xAA};
    mmio->write(reg::FCAL + 1, w1);
    CHECK(rig.rd(reg::FCAL) == 0x1234AA78);
    std::uint8_t w8[8] = {1, 0, 0, 0, 2, 0, 0, 0};
    mmio->write(reg::RAL(3), w8);
    CHECK(rig.rd(reg::RAL(3)) == 1);
    CHECK(rig.rd(reg::RAH(3)) == 2);
    std::uint8_t r8[8];
    mmio->read(reg::RAL(3), r8);
    CHECK(r8[0] == 1);
    CHECK(r8[4] == 2);
    CHECK(rig.counter("mmio_reads") > 0);
}
