// The 82540EM's internal copper PHY, register-compatible with a Marvell
// M88E1011 (the PHY ID Linux's e1000 checks for), reached through MDIC at
// PHY address 1. The link state comes from the backend; when the link is
// up the PHY reports a completed auto-negotiation at 1000 Mb/s full duplex
// (BMSR, ANLPAR, 1000BASE-T status and the M88 specific status register),
// which is what drivers read to configure the MAC.
#pragma once

#include <array>
#include <cstdint>

namespace xover::e1000 {

namespace phy_reg {
constexpr unsigned BMCR = 0x00;
constexpr unsigned BMSR = 0x01;
constexpr unsigned PHYID1 = 0x02;
constexpr unsigned PHYID2 = 0x03;
constexpr unsigned ANAR = 0x04;
constexpr unsigned ANLPAR = 0x05;
constexpr unsigned ANER = 0x06;
constexpr unsigned NPTX = 0x07;
constexpr unsigned LPNP = 0x08;
constexpr unsigned GBCR = 0x09;    // 1000BASE-T control
constexpr unsigned GBSR = 0x0A;    // 1000BASE-T status
constexpr unsigned EXTSR = 0x0F;   // extended status
constexpr unsigned PSCR = 0x10;    // M88: PHY specific control
constexpr unsigned PSSR = 0x11;    // M88: PHY specific status
constexpr unsigned PIER = 0x12;    // M88: interrupt enable
constexpr unsigned PISR = 0x13;    // M88: interrupt status
constexpr unsigned EPSCR = 0x14;   // M88: extended PHY specific control
constexpr unsigned RXERR = 0x15;   // M88: receive error counter
}  // namespace phy_reg

namespace bmcr {
constexpr std::uint16_t SPEED_MSB = 1u << 6;
constexpr std::uint16_t FULL_DUPLEX = 1u << 8;
constexpr std::uint16_t RESTART_AN = 1u << 9;
constexpr std::uint16_t AN_ENABLE = 1u << 12;
constexpr std::uint16_t RESET = 1u << 15;
}  // namespace bmcr

namespace bmsr {
constexpr std::uint16_t LINK = 1u << 2;
constexpr std::uint16_t AN_COMPLETE = 1u << 5;
}  // namespace bmsr

namespace pssr {
constexpr std::uint16_t LINK = 1u << 10;
constexpr std::uint16_t RESOLVED = 1u << 11;
constexpr std::uint16_t FULL_DUPLEX = 1u << 13;
constexpr std::uint16_t SPEED_1000 = 2u << 14;
}  // namespace pssr

class Phy {
public:
    static constexpr unsigned kRegisters = 32;
    static constexpr std::uint16_t kId1 = 0x0141;  // Marvell OUI bits
    static constexpr std::uint16_t kId2 = 0x0C20;  // M88E1011, revision 0

    explicit Phy(bool link_up = true) : link_(link_up) { reset(); }

    // Power-on / CTRL.PHY_RST defaults (the link state is kept).
    void reset();
    std::uint16_t read(unsigned reg) const;
    void write(unsigned reg, std::uint16_t value);
    void set_link(bool up) { link_ = up; }
    bool link() const { return link_; }

private:
    std::array<std::uint16_t, kRegisters> regs_{};
    bool link_;
};

}  // namespace xover::e1000
