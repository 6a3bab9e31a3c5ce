#include "xover/e1000/phy.hpp"

namespace xover::e1000 {

namespace {
// BMSR capability bits: 100BASE-TX FD/HD, 10BASE-T FD/HD, extended status,
// preamble suppression, auto-negotiation ability, extended capability.
constexpr std::uint16_t kBmsrStatic = 0x7800 | 0x0100 | 0x0040 | 0x0008 | 0x0001;
// Link partner base page: ACK, PAUSE, 100/10 FD/HD, IEEE 802.3 selector.
constexpr std::uint16_t kPartnerAbility = 0x4000 | 0x0400 | 0x01E0 | 0x0001;
// 1000BASE-T status: local and remote receiver OK, partner 1000 FD and HD.
constexpr std::uint16_t kGbsrLinked = 0x2000 | 0x1000 | 0x0800 | 0x0400;
// Extended status: 1000BASE-T full and half duplex capable.
constexpr std::uint16_t kExtendedStatus = 0x3000;

bool read_only(unsigned reg) {
    switch (reg) {
    case phy_reg::BMSR: case phy_reg::PHYID1: case phy_reg::PHYID2: case phy_reg::ANLPAR:
    case phy_reg::ANER: case phy_reg::LPNP: case phy_reg::GBSR: case phy_reg::EXTSR:
    case phy_reg::PSSR: case phy_reg::PISR: case phy_reg::RXERR:
        return true;
    default:
        return false;
    }
}
}  // namespace

void Phy::reset() {
    regs_.fill(0);
    regs_[phy_reg::BMCR] = bmcr::AN_ENABLE | bmcr::FULL_DUPLEX | bmcr::SPEED_MSB;
    regs_[phy_reg::PHYID1] = kId1;
    regs_[phy_reg::PHYID2] = kId2;
    regs_[phy_reg::ANAR] = 0x01E1;   // 100/10 FD/HD, selector 802.3
    regs_[phy_reg::NPTX] = 0x2001;
    regs_[phy_reg::GBCR] = 0x0300;   // advertise 1000 FD and HD
    regs_[phy_reg::EXTSR] = kExtendedStatus;
    regs_[phy_reg::PSCR] = 0x0068;   // auto MDI/MDI-X, energy detect off
    regs_[phy_reg::EPSCR] = 0x0D60;
}

std::uint16_t Phy::read(unsigned reg) const {
    if (reg >= kRegisters) return 0xFFFF;
    switch (reg) {
    case phy_reg::BMSR:
        return kBmsrStatic | (link_ ? bmsr::LINK | bmsr::AN_COMPLETE : 0);
    case phy_reg::ANLPAR:
        return link_ ? kPartnerAbility : 0;
    case phy_reg::ANER:
        return link_ ? 0x0001 : 0;  // partner is auto-negotiation able
    case phy_reg::GBSR:
        return link_ ? kGbsrLinked : 0;
    case phy_reg::PSSR:
        return link_ ? pssr::SPEED_1000 | pssr::FULL_DUPLEX | pssr::RESOLVED | pssr::LINK : 0;
    default:
        return regs_[reg];
    }
}

void Phy::write(unsigned reg, std::uint16_t value) {
    if (reg >= kRegisters || read_only(reg)) return;
    if (reg == phy_reg::BMCR) {
        // A software reset on this PHY commits the configuration written to
        // the other registers rather than erasing it, and auto-negotiation
        // finishes instantly: both bits self-clear.
        value &= std::uint16_t(~(bmcr::RESET | bmcr::RESTART_AN));
    }
    regs_[reg] = value;
}

}  // namespace xover::e1000
