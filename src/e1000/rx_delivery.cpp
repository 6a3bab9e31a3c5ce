// See rx_delivery.hpp. The checksum rules follow the 8254x manual's
// receive checksum offload section: IPv4 only, no L4 sum for fragments,
// a UDP checksum of 0 means "none sent".
#include "xover/e1000/rx_delivery.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "checksum.hpp"
#include "xover/e1000/registers.hpp"

namespace xover::e1000::rx_delivery {

namespace {
constexpr std::size_t kMacAddresses = 12;  // destination and source
constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
}  // namespace

Delivery::Delivery(std::span<const std::uint8_t> frame, const Registers& regs) : rxcsum_(regs.rxcsum) {
    // Frames shorter than an Ethernet header never get here (the filter
    // calls them malformed); be safe anyway.
    bool tagged = frame.size() >= kMacAddresses + 6 && load_be16(frame.data() + 12) == std::uint16_t(regs.vet);
    stripped_ = tagged && (regs.ctrl & ctrl::VME);
    head_ = frame.first(std::min(frame.size(), kMacAddresses));
    body_ = frame.subspan(head_.size() + (stripped_ ? 4 : 0));
    if (stripped_) {
        special_ = load_be16(frame.data() + 14);
        status_ |= rxd::STA_VP;
    }
    fcs_ = !(regs.rctl & rctl::SECRC);
}

void Delivery::settle() {
    if (settled_) return;
    settled_ = true;
    if (body_.size() >= 2) check_checksums(rxcsum_, load_be16(body_.data()), body_.subspan(2), status_, errors_);
    if (fcs_) {
        std::uint32_t c = crc32_final(crc32_update(crc32_update(kCrc32Init, head_), body_));
        for (int i = 0; i < 4; ++i) crc_[i] = std::uint8_t(c >> (8 * i));
    }
}

void Delivery::scatter(std::span<const std::span<std::uint8_t>> buffers) {
    settle();
    std::span<const std::uint8_t> pieces[3] = {head_, body_, {crc_.data(), fcs_ ? 4u : 0u}};
    unsigned piece = 0;
    std::size_t at = 0;
    for (std::span<std::uint8_t> buffer : buffers) {
        std::uint8_t* out = buffer.data();
        std::size_t want = buffer.size();
        while (want != 0 && piece < 3) {
            if (at == pieces[piece].size()) {
                ++piece, at = 0;
                continue;
            }
            std::size_t take = std::min(want, pieces[piece].size() - at);
            // memmove: in window mode the source may be this very buffer
            // (a frame rewritten where it lies, its tag stripped).
            std::memmove(out, pieces[piece].data() + at, take);
            out += take, want -= take, at += take;
        }
    }
}

void Delivery::write_back(std::span<std::uint8_t> descriptor, std::uint16_t length, bool last) {
    settle();
    std::uint8_t* d = descriptor.data();
    d[8] = std::uint8_t(length), d[9] = std::uint8_t(length >> 8);
    d[10] = d[11] = 0;  // packet checksum: not provided (RXCSUM.PCSS unused)
    d[13] = last ? errors_ : 0;
    std::uint16_t special = last ? special_ : 0;
    d[14] = std::uint8_t(special), d[15] = std::uint8_t(special >> 8);
    // Data and length are visible before DD tells a polling driver.
    std::atomic_ref<std::uint8_t>(d[12]).store(std::uint8_t(rxd::STA_DD | (last ? rxd::STA_EOP | status_ : 0)),
                                               std::memory_order_release);
}

void Delivery::write(const Targets& targets) {
    scatter(std::span(targets.buffers).first(targets.count));
    // Last descriptor first: the first one's DD then means the whole frame
    // is there, for a driver that polls DD (and for one reading after a
    // producer that died between two write-backs).
    for (std::uint32_t i = targets.count; i-- > 0;)
        write_back(targets.descriptors[i], std::uint16_t(targets.buffers[i].size()), i + 1 == targets.count);
}

std::uint32_t resolve(vmm::GuestMemory& memory, std::uint64_t ring_gpa, std::uint32_t entries, std::uint32_t head,
                      std::uint32_t needed, std::size_t total, std::uint32_t buffer_size, Targets& out) {
    constexpr std::uint64_t kDescriptorBytes = 16;
    out.count = 0;
    std::size_t remaining = total;
    for (std::uint32_t i = 0; i < needed && i < kMaxDescriptors; ++i) {
        std::uint32_t index = (head + i) % entries;
        auto descriptor = memory.span(ring_gpa + std::uint64_t(index) * kDescriptorBytes, kDescriptorBytes);
        if (descriptor.empty()) break;
        std::uint64_t address;
        std::memcpy(&address, descriptor.data(), 8);
        std::size_t chunk = std::min<std::size_t>(remaining, buffer_size);
        auto buffer = memory.span(address, chunk);
        if (buffer.empty()) break;
        out.descriptors[i] = descriptor, out.buffers[i] = buffer;
        out.count = i + 1;
        remaining -= chunk;
    }
    return out.count;
}

void check_checksums(std::uint32_t rxcsum, std::uint16_t ether_type, std::span<const std::uint8_t> l3,
                     std::uint8_t& status, std::uint8_t& errors) {
    if (!(rxcsum & (rxcsum::IPOFL | rxcsum::TUOFL))) {
        status |= rxd::STA_IXSM;
        return;
    }
    if (ether_type != kEtherTypeIpv4 || l3.size() < 20 || (l3[0] >> 4) != 4) return;
    std::size_t ihl = std::size_t(l3[0] & 0xF) * 4;
    std::size_t total = load_be16(l3.data() + 2);
    if (ihl < 20 || total < ihl || total > l3.size()) return;
    if (rxcsum & rxcsum::IPOFL) {
        status |= rxd::STA_IPCS;
        if (fold_checksum(add_checksum(l3.first(ihl))) != 0xFFFF) errors |= rxd::ERR_IPE;
    }
    if (!(rxcsum & rxcsum::TUOFL) || (load_be16(l3.data() + 6) & 0x3FFF) != 0) return;  // fragments: no L4 sum
    std::uint8_t proto = l3[9];
    auto l4 = l3.subspan(ihl, total - ihl);
    if ((proto != kProtoTcp && proto != kProtoUdp) || l4.size() < (proto == kProtoTcp ? 20u : 8u)) return;
    status |= rxd::STA_TCPCS;
    if (proto == kProtoUdp && load_be16(l4.data() + 6) == 0) return;  // sender sent no checksum
    std::uint32_t sum = add_checksum(l3.subspan(12, 8), proto + std::uint32_t(l4.size()));
    if (fold_checksum(add_checksum(l4, sum)) != 0xFFFF) errors |= rxd::ERR_TCPE;
}

}  // namespace xover::e1000::rx_delivery
