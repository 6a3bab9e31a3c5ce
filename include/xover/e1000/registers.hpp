// Register map and bit definitions of the Intel 82540EM, as given in the
// PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's
// Manual (8254x). Offsets are byte offsets into BAR0. Public so tests and
// the crossover engine can name registers and descriptor bits.
#pragma once

#include <cstdint>

namespace xover::e1000 {

namespace reg {
// General
constexpr std::uint32_t CTRL = 0x0000;
constexpr std::uint32_t STATUS = 0x0008;
constexpr std::uint32_t EECD = 0x0010;
constexpr std::uint32_t EERD = 0x0014;
constexpr std::uint32_t CTRL_EXT = 0x0018;
constexpr std::uint32_t FLA = 0x001C;
constexpr std::uint32_t MDIC = 0x0020;
constexpr std::uint32_t FCAL = 0x0028;
constexpr std::uint32_t FCAH = 0x002C;
constexpr std::uint32_t FCT = 0x0030;
constexpr std::uint32_t VET = 0x0038;
constexpr std::uint32_t FCTTV = 0x0170;
constexpr std::uint32_t TXCW = 0x0178;
constexpr std::uint32_t RXCW = 0x0180;
constexpr std::uint32_t LEDCTL = 0x0E00;
constexpr std::uint32_t PBA = 0x1000;
// Interrupts
constexpr std::uint32_t ICR = 0x00C0;
constexpr std::uint32_t ITR = 0x00C4;
constexpr std::uint32_t ICS = 0x00C8;
constexpr std::uint32_t IMS = 0x00D0;
constexpr std::uint32_t IMC = 0x00D8;
// Receive
constexpr std::uint32_t RCTL = 0x0100;
constexpr std::uint32_t FCRTL = 0x2160;
constexpr std::uint32_t FCRTH = 0x2168;
constexpr std::uint32_t RDBAL = 0x2800;
constexpr std::uint32_t RDBAH = 0x2804;
constexpr std::uint32_t RDLEN = 0x2808;
constexpr std::uint32_t RDH = 0x2810;
constexpr std::uint32_t RDT = 0x2818;
constexpr std::uint32_t RDTR = 0x2820;
constexpr std::uint32_t RXDCTL = 0x2828;
constexpr std::uint32_t RADV = 0x282C;
constexpr std::uint32_t RSRPD = 0x2C00;
constexpr std::uint32_t RXCSUM = 0x5000;
constexpr std::uint32_t MTA = 0x5200;   // 128 entries
constexpr std::uint32_t RAL0 = 0x5400;  // RAL(n) = RAL0 + 8n, RAH(n) = RAL0 + 8n + 4, 16 pairs
constexpr std::uint32_t RAH0 = 0x5404;
constexpr std::uint32_t VFTA = 0x5600;  // 128 entries
// Transmit
constexpr std::uint32_t TCTL = 0x0400;
constexpr std::uint32_t TIPG = 0x0410;
constexpr std::uint32_t AIFS = 0x0458;
constexpr std::uint32_t TDBAL = 0x3800;
constexpr std::uint32_t TDBAH = 0x3804;
constexpr std::uint32_t TDLEN = 0x3808;
constexpr std::uint32_t TDH = 0x3810;
constexpr std::uint32_t TDT = 0x3818;
constexpr std::uint32_t TIDV = 0x3820;
constexpr std::uint32_t TXDCTL = 0x3828;
constexpr std::uint32_t TADV = 0x382C;
constexpr std::uint32_t TSPMT = 0x3830;
// Wake-up and management (plain storage)
constexpr std::uint32_t WUC = 0x5800;
constexpr std::uint32_t WUFC = 0x5808;
constexpr std::uint32_t WUS = 0x5810;
constexpr std::uint32_t MANC = 0x5820;
// Statistics: 64 read-to-clear counters from CRCERRS to TSCTFC.
constexpr std::uint32_t STATS_FIRST = 0x4000;
constexpr std::uint32_t STATS_LAST = 0x40FC;
constexpr std::uint32_t CRCERRS = 0x4000;
constexpr std::uint32_t MPC = 0x4010;
constexpr std::uint32_t COLC = 0x4028;
constexpr std::uint32_t PRC64 = 0x405C;
constexpr std::uint32_t PRC127 = 0x4060;
constexpr std::uint32_t PRC255 = 0x4064;
constexpr std::uint32_t PRC511 = 0x4068;
constexpr std::uint32_t PRC1023 = 0x406C;
constexpr std::uint32_t PRC1522 = 0x4070;
constexpr std::uint32_t GPRC = 0x4074;
constexpr std::uint32_t BPRC = 0x4078;
constexpr std::uint32_t MPRC = 0x407C;
constexpr std::uint32_t GPTC = 0x4080;
constexpr std::uint32_t GORCL = 0x4088;
constexpr std::uint32_t GORCH = 0x408C;
constexpr std::uint32_t GOTCL = 0x4090;
constexpr std::uint32_t GOTCH = 0x4094;
constexpr std::uint32_t RNBC = 0x40A0;
constexpr std::uint32_t RUC = 0x40A4;
constexpr std::uint32_t ROC = 0x40AC;
constexpr std::uint32_t TORL = 0x40C0;
constexpr std::uint32_t TORH = 0x40C4;
constexpr std::uint32_t TOTL = 0x40C8;
constexpr std::uint32_t TOTH = 0x40CC;
constexpr std::uint32_t TPR = 0x40D0;
constexpr std::uint32_t TPT = 0x40D4;
constexpr std::uint32_t PTC64 = 0x40D8;
constexpr std::uint32_t PTC127 = 0x40DC;
constexpr std::uint32_t PTC255 = 0x40E0;
constexpr std::uint32_t PTC511 = 0x40E4;
constexpr std::uint32_t PTC1023 = 0x40E8;
constexpr std::uint32_t PTC1522 = 0x40EC;
constexpr std::uint32_t MPTC = 0x40F0;
constexpr std::uint32_t BPTC = 0x40F4;
constexpr std::uint32_t TSCTC = 0x40F8;
constexpr std::uint32_t TSCTFC = 0x40FC;

constexpr std::uint32_t RAL(unsigned n) { return RAL0 + 8 * n; }
constexpr std::uint32_t RAH(unsigned n) { return RAH0 + 8 * n; }
}  // namespace reg

constexpr std::uint64_t kItrUnitNs = 256;  // ITR counts 256 ns intervals

namespace ctrl {
constexpr std::uint32_t FD = 1u << 0;
constexpr std::uint32_t LRST = 1u << 3;
constexpr std::uint32_t ASDE = 1u << 5;
constexpr std::uint32_t SLU = 1u << 6;
constexpr std::uint32_t SPEED_1000 = 2u << 8;
constexpr std::uint32_t RST = 1u << 26;
constexpr std::uint32_t VME = 1u << 30;
constexpr std::uint32_t PHY_RST = 1u << 31;
}  // namespace ctrl

namespace status {
constexpr std::uint32_t FD = 1u << 0;
constexpr std::uint32_t LU = 1u << 1;
constexpr std::uint32_t SPEED_1000 = 2u << 6;
}  // namespace status

namespace eecd {
constexpr std::uint32_t SK = 1u << 0;
constexpr std::uint32_t CS = 1u << 1;
constexpr std::uint32_t DI = 1u << 2;
constexpr std::uint32_t DO = 1u << 3;
constexpr std::uint32_t REQ = 1u << 6;
constexpr std::uint32_t GNT = 1u << 7;
constexpr std::uint32_t PRES = 1u << 8;
}  // namespace eecd

namespace eerd {  // 82540 layout
constexpr std::uint32_t START = 1u << 0;
constexpr std::uint32_t DONE = 1u << 4;
constexpr unsigned ADDR_SHIFT = 8;
constexpr unsigned DATA_SHIFT = 16;
}  // namespace eerd

namespace mdic {
constexpr unsigned REG_SHIFT = 16;
constexpr unsigned PHY_SHIFT = 21;
constexpr std::uint32_t OP_WRITE = 1u << 26;
constexpr std::uint32_t OP_READ = 2u << 26;
constexpr std::uint32_t READY = 1u << 28;
constexpr std::uint32_t INT = 1u << 29;
constexpr std::uint32_t ERROR = 1u << 30;
}  // namespace mdic

// ICR / ICS / IMS / IMC cause bits.
namespace icr {
constexpr std::uint32_t TXDW = 1u << 0;
constexpr std::uint32_t TXQE = 1u << 1;
constexpr std::uint32_t LSC = 1u << 2;
constexpr std::uint32_t RXSEQ = 1u << 3;
constexpr std::uint32_t RXDMT0 = 1u << 4;
constexpr std::uint32_t RXO = 1u << 6;
constexpr std::uint32_t RXT0 = 1u << 7;
constexpr std::uint32_t MDAC = 1u << 9;
constexpr std::uint32_t RXCFG = 1u << 10;
constexpr std::uint32_t TXD_LOW = 1u << 15;
constexpr std::uint32_t SRPD = 1u << 16;
constexpr std::uint32_t VALID = 0x0001FFFF;  // causes this model can hold
}  // namespace icr

namespace rctl {
constexpr std::uint32_t EN = 1u << 1;
constexpr std::uint32_t SBP = 1u << 2;
constexpr std::uint32_t UPE = 1u << 3;
constexpr std::uint32_t MPE = 1u << 4;
constexpr std::uint32_t LPE = 1u << 5;
constexpr unsigned RDMTS_SHIFT = 8;
constexpr unsigned MO_SHIFT = 12;
constexpr std::uint32_t BAM = 1u << 15;
constexpr unsigned BSIZE_SHIFT = 16;
constexpr std::uint32_t VFE = 1u << 18;
constexpr std::uint32_t BSEX = 1u << 25;
constexpr std::uint32_t SECRC = 1u << 26;
}  // namespace rctl

namespace tctl {
constexpr std::uint32_t EN = 1u << 1;
constexpr std::uint32_t PSP = 1u << 3;
}  // namespace tctl

namespace rxcsum {
constexpr std::uint32_t IPOFL = 1u << 8;
constexpr std::uint32_t TUOFL = 1u << 9;
}  // namespace rxcsum

constexpr std::uint32_t RAH_AV = 1u << 31;
constexpr std::uint32_t DELAY_FPD = 1u << 31;  // RDTR/TIDV "flush partial descriptor"

// Transmit descriptors (16 bytes). Legacy: addr, length(16), cso, cmd, status, css, special.
namespace txd {
constexpr std::uint8_t CMD_EOP = 1u << 0;
constexpr std::uint8_t CMD_IFCS = 1u << 1;
constexpr std::uint8_t CMD_IC = 1u << 2;   // legacy: insert checksum
constexpr std::uint8_t CMD_TSE = 1u << 2;  // data descriptor: TCP segmentation
constexpr std::uint8_t CMD_RS = 1u << 3;
constexpr std::uint8_t CMD_DEXT = 1u << 5;
constexpr std::uint8_t CMD_VLE = 1u << 6;
constexpr std::uint8_t CMD_IDE = 1u << 7;
constexpr std::uint8_t STA_DD = 1u << 0;
constexpr std::uint8_t DTYP_CONTEXT = 0x0;
constexpr std::uint8_t DTYP_DATA = 0x1;
constexpr std::uint8_t POPTS_IXSM = 1u << 0;
constexpr std::uint8_t POPTS_TXSM = 1u << 1;
// Context descriptor TUCMD bits
constexpr std::uint8_t TUCMD_TCP = 1u << 0;
constexpr std::uint8_t TUCMD_IP = 1u << 1;
constexpr std::uint8_t TUCMD_TSE = 1u << 2;
}  // namespace txd

// Receive descriptors (16 bytes): addr, length(16), csum(16), status, errors, special.
namespace rxd {
constexpr std::uint8_t STA_DD = 1u << 0;
constexpr std::uint8_t STA_EOP = 1u << 1;
constexpr std::uint8_t STA_IXSM = 1u << 2;
constexpr std::uint8_t STA_VP = 1u << 3;
constexpr std::uint8_t STA_TCPCS = 1u << 5;
constexpr std::uint8_t STA_IPCS = 1u << 6;
constexpr std::uint8_t ERR_TCPE = 1u << 5;
constexpr std::uint8_t ERR_IPE = 1u << 6;
}  // namespace rxd

constexpr std::uint32_t kDescriptorSize = 16;
constexpr std::uint32_t kMmioSize = 128 * 1024;
constexpr std::uint32_t kIoSize = 64;
constexpr unsigned kReceiveAddresses = 16;
constexpr unsigned kMulticastTableWords = 128;
constexpr unsigned kVlanFilterWords = 128;
constexpr unsigned kPhyAddress = 1;

}  // namespace xover::e1000
