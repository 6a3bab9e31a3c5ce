// The 82540EM's receive filter as one pure function: does the NIC take a
// frame, given RCTL (UPE, MPE, BAM, MO, VFE), the 16 exact-match receive
// addresses (RAL/RAH with AV), the 4096-bit multicast table (MTA), the VLAN
// EtherType (VET) and the 4096-bit VLAN filter table (VFTA)?
//
// Two callers read those registers from different places: the device model
// from its register file, a crossover producer in another process from the
// copy the owner publishes in its shared NIC state page. Both pass a reader
// `reg(offset) -> value` (offsets as in registers.hpp) and so share one
// decision. The copy is a dense array of the registers the filter reads;
// word_index() numbers them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "xover/byte_order.hpp"
#include "xover/e1000/registers.hpp"
#include "xover/net/ethernet.hpp"

namespace xover::e1000::rx_filter {

// Dense numbering of the registers the filter reads.
inline constexpr unsigned kRctlWord = 0;
inline constexpr unsigned kVetWord = 1;
inline constexpr unsigned kAddressWords = 2;                                     // RAL(n), RAH(n) at 2 + 2n, 3 + 2n
inline constexpr unsigned kMtaWords = kAddressWords + 2 * kReceiveAddresses;  // 128 words
inline constexpr unsigned kVftaWords = kMtaWords + 128;                         // 128 words
// Not the filter's, but what a producer also needs to deliver a frame as
// the NIC would (rx_delivery.hpp): VLAN stripping and checksum offload.
inline constexpr unsigned kCtrlWord = kVftaWords + 128;
inline constexpr unsigned kRxcsumWord = kCtrlWord + 1;
inline constexpr unsigned kWords = kRxcsumWord + 1;

// The dense index of a register at `offset`, or kWords for a register the
// filter does not read.
constexpr unsigned word_index(std::uint32_t offset) {
    if (offset == reg::RCTL) return kRctlWord;
    if (offset == reg::VET) return kVetWord;
    if (offset == reg::CTRL) return kCtrlWord;
    if (offset == reg::RXCSUM) return kRxcsumWord;
    if (offset >= reg::RAL0 && offset < reg::RAL0 + 8 * kReceiveAddresses) return kAddressWords + (offset - reg::RAL0) / 4;
    if (offset >= reg::MTA && offset < reg::MTA + 4 * 128) return kMtaWords + (offset - reg::MTA) / 4;
    if (offset >= reg::VFTA && offset < reg::VFTA + 4 * 128) return kVftaWords + (offset - reg::VFTA) / 4;
    return kWords;
}

// The register offset of dense word `index` (< kWords).
constexpr std::uint32_t word_offset(unsigned index) {
    if (index == kRctlWord) return reg::RCTL;
    if (index == kVetWord) return reg::VET;
    if (index == kCtrlWord) return reg::CTRL;
    if (index == kRxcsumWord) return reg::RXCSUM;
    if (index < kMtaWords) return reg::RAL0 + 4 * (index - kAddressWords);
    if (index < kVftaWords) return reg::MTA + 4 * (index - kMtaWords);
    return reg::VFTA + 4 * (index - kVftaWords);
}

enum class Verdict {
    Accept,
    Malformed,  // shorter than an Ethernet header
    Address,    // no address filter takes the destination
    Vlan,       // tagged with a VLAN ID the VFTA does not hold (RCTL.VFE)
};

using net::kEthernetHeader;

// The destination address filter: broadcast needs BAM (or MPE); unicast
// UPE or an exact match; multicast MPE, an exact match or its MTA bit.
template <class Read>
bool address_accepted(const std::uint8_t* dst, Read&& read) {
    const std::uint32_t rctl = read(reg::RCTL);
    const bool multicast = dst[0] & 1;
    bool broadcast = true;
    for (int i = 0; i < 6; ++i) broadcast = broadcast && dst[i] == 0xFF;
    if (broadcast) return rctl & (rctl::BAM | rctl::MPE);
    if (multicast ? (rctl & rctl::MPE) : (rctl & rctl::UPE)) return true;
    const std::uint32_t low = load_le32(dst);  // RAL/RAH hold the address little-endian
    const std::uint32_t high = load_le16(dst + 4);
    for (unsigned i = 0; i < kReceiveAddresses; ++i) {
        const std::uint32_t rah = read(reg::RAH(i));
        if ((rah & RAH_AV) && (rah & 0xFFFF) == high && read(reg::RAL(i)) == low) return true;
    }
    if (!multicast) return false;
    // Inexact multicast filter: 12 bits of the address, chosen by RCTL.MO,
    // index a 4096-bit table.
    const unsigned mo = (rctl >> rctl::MO_SHIFT) & 3;
    std::uint32_t hash = mo == 3 ? (dst[4] | dst[5] << 8) : (dst[4] >> (4 - mo) | dst[5] << (4 + mo));
    hash &= 0xFFF;
    return read(reg::MTA + 4 * (hash >> 5)) & (1u << (hash & 31));
}

// The whole receive filter, in the order the hardware applies it.
template <class Read>
Verdict check(std::span<const std::uint8_t> frame, Read&& read) {
    if (frame.size() < kEthernetHeader) return Verdict::Malformed;
    if (!address_accepted(frame.data(), read)) return Verdict::Address;
    const std::uint32_t rctl = read(reg::RCTL);
    if (!(rctl & rctl::VFE) || frame.size() < kEthernetHeader + 4) return Verdict::Accept;
    const std::uint16_t type = load_be16(frame.data() + 12);
    if (type != std::uint16_t(read(reg::VET))) return Verdict::Accept;  // untagged
    const unsigned vid = load_be16(frame.data() + 14) & 0xFFF;
    return (read(reg::VFTA + 4 * (vid >> 5)) & (1u << (vid & 31))) ? Verdict::Accept : Verdict::Vlan;
}

}  // namespace xover::e1000::rx_filter
