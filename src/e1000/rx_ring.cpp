// Receive: address and VLAN filtering, then one frame into as many receive
// buffers as it needs (from RDH up to RDT), descriptor write-back, RDH
// advance and the RXT0 / RXDMT0 / RXO causes.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "checksum.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/e1000/rx_filter.hpp"

namespace xover::e1000 {

namespace {
constexpr std::size_t kEthernetHeader = rx_filter::kEthernetHeader;
constexpr std::size_t kMaxStandardFrame = 1522;  // with FCS and one VLAN tag
constexpr std::size_t kMaxLongFrame = 16384;     // RCTL.LPE
constexpr std::uint32_t kMinBufferSize = 256;
// Enough descriptors for the longest frame in the smallest buffers.
constexpr std::size_t kMaxDescriptorsPerFrame = (kMaxLongFrame + 4 + kMinBufferSize - 1) / kMinBufferSize;
constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

std::uint64_t le64(const std::uint8_t* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
void store_le16(std::uint8_t* p, std::uint16_t v) {
    p[0] = std::uint8_t(v);
    p[1] = std::uint8_t(v >> 8);
}
}  // namespace

std::uint32_t E1000::rx_ring_size() const { return r(reg::RDLEN) / kDescriptorSize; }

std::uint32_t E1000::rx_buffer_size() const {
    std::uint32_t rctl = r(reg::RCTL);
    unsigned bsize = (rctl >> rctl::BSIZE_SHIFT) & 3;
    // BSEX multiplies by 16; BSEX with BSIZE 00 is reserved (taken as 2048).
    static constexpr std::uint32_t kNormal[] = {2048, 1024, 512, 256};
    static constexpr std::uint32_t kExtended[] = {2048, 16384, 8192, 4096};
    return (rctl & rctl::BSEX) ? kExtended[bsize] : kNormal[bsize];
}

// Receive checksum offload (RXCSUM.IPOFL/TUOFL) for IPv4 TCP/UDP: status
// says what was checked, errors what failed. With both off the NIC sets
// IXSM ("ignore checksum indication").
void E1000::rx_checksum(std::uint16_t ether_type, std::span<const std::uint8_t> l3, std::uint8_t& status,
                        std::uint8_t& errors) const {
    std::uint32_t rxcsum = r(reg::RXCSUM);
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

bool E1000::deliver(std::span<const std::uint8_t> frame) {
    std::lock_guard lock(mutex_);
    if (!shared_) return deliver_locked(frame);
    // Crossover peers fill this ring too: one producer at a time.
    crossover::ProducerLock producer(shared_);
    if (producer.failed()) {
        ++counters_.rx_dropped_no_buffer;
        log_.warn("{}: RX ring lock held too long by a crossover peer; frame dropped", name_);
        return true;
    }
    return deliver_locked(frame);
}

bool E1000::deliver_locked(std::span<const std::uint8_t> frame) {
    std::uint32_t rctl = r(reg::RCTL);
    if (!(rctl & rctl::EN)) {
        // Not ready yet, like QEMU's e1000: a lossless backend keeps the
        // frame until RCTL.EN is set (which calls rx_space_available());
        // a lossy one drops and counts it.
        ++counters_.rx_dropped_disabled;
        return false;
    }
    // The same decision a crossover producer makes from our published
    // copy of these registers (rx_filter.hpp).
    switch (rx_filter::check(frame, [this](std::uint32_t offset) { return r(offset); })) {
    case rx_filter::Verdict::Accept: break;
    case rx_filter::Verdict::Malformed: ++counters_.rx_malformed; return true;
    case rx_filter::Verdict::Address:
    case rx_filter::Verdict::Vlan: ++counters_.rx_filtered; return true;
    }
    std::uint16_t vet = std::uint16_t(r(reg::VET));
    bool tagged = frame.size() >= kEthernetHeader + 4 && load_be16(frame.data() + 12) == vet;
    std::uint16_t tci = tagged ? load_be16(frame.data() + 14) : 0;
    if (frame.size() + 4 > ((rctl & rctl::LPE) ? kMaxLongFrame : kMaxStandardFrame)) {
        ++counters_.rx_oversize;
        stat_add(reg::ROC);
        return true;
    }
    if (!bus_master_) {
        ++counters_.dma_without_bus_master;
        log_.warn("{}: frame dropped: PCI bus mastering is off", name_);
        return true;
    }

    std::uint32_t n = rx_ring_size();
    std::uint32_t head = rdh();
    std::uint32_t tail = r(reg::RDT);
    if (n != 0 && (head >= n || tail >= n)) {
        ++counters_.rx_bad_ring;
        log_.warn("{}: receive ring head {} / tail {} outside a ring of {} descriptors", name_, head, tail, n);
        return false;
    }
    // What the guest gets: the frame, less a stripped VLAN tag (CTRL.VME),
    // plus the FCS unless RCTL.SECRC strips it.
    bool strip = tagged && (r(reg::CTRL) & ctrl::VME);
    bool fcs = !(rctl & rctl::SECRC);
    std::span<const std::uint8_t> head_part = frame.first(12);
    std::span<const std::uint8_t> body = frame.subspan(strip ? 16 : 12);
    std::size_t total = head_part.size() + body.size() + (fcs ? 4 : 0);
    std::uint32_t buffer_size = rx_buffer_size();
    std::uint32_t needed = std::uint32_t((total + buffer_size - 1) / buffer_size);
    if (n != 0 && needed > n - 1) {
        ++counters_.rx_oversize;  // could never fit, even in an empty ring
        log_.warn("{}: {}-byte frame needs {} descriptors, ring has {}", name_, frame.size(), needed, n);
        return true;
    }
    std::uint32_t free = n == 0 ? 0 : (tail + n - head) % n;
    if (free < needed) {
        ++counters_.rx_dropped_no_buffer;
        stat_add(reg::RNBC);
        raise(icr::RXO);
        return false;
    }

    // Resolve every descriptor and buffer first: a bad address drops the
    // frame without touching the ring.
    struct Target {
        std::span<std::uint8_t> descriptor;
        std::span<std::uint8_t> buffer;
    };
    std::array<Target, kMaxDescriptorsPerFrame> targets;
    std::uint64_t base = (std::uint64_t(r(reg::RDBAH)) << 32) | r(reg::RDBAL);
    std::size_t remaining = total;
    for (std::uint32_t i = 0; i < needed; ++i) {
        std::uint32_t index = (head + i) % n;
        auto descriptor = memory_.span(base + std::uint64_t(index) * kDescriptorSize, kDescriptorSize);
        std::size_t chunk = std::min<std::size_t>(remaining, buffer_size);
        std::span<std::uint8_t> buffer;
        if (!descriptor.empty()) buffer = memory_.span(le64(descriptor.data()), chunk);
        if (buffer.empty()) {
            ++counters_.rx_bad_address;
            log_.warn("{}: receive descriptor {} or its buffer is outside guest memory; frame dropped", name_, index);
            return true;
        }
        targets[i] = {descriptor, buffer};
        remaining -= chunk;
    }

    std::uint8_t status = 0, errors = 0;
    std::uint16_t inner_type = load_be16(body.data());
    rx_checksum(inner_type, body.subspan(2), status, errors);
    if (strip) status |= rxd::STA_VP;
    std::uint8_t crc[4] = {};
    if (fcs) {
        std::uint32_t c = crc32_final(crc32_update(crc32_update(kCrc32Init, head_part), body));
        for (int i = 0; i < 4; ++i) crc[i] = std::uint8_t(c >> (8 * i));
    }

    // Scatter [head_part | body | fcs] over the buffers.
    std::span<const std::uint8_t> pieces[3] = {head_part, body, {crc, fcs ? 4u : 0u}};
    unsigned piece = 0;
    std::size_t piece_offset = 0;
    for (std::uint32_t i = 0; i < needed; ++i) {
        std::uint8_t* out = targets[i].buffer.data();
        std::size_t want = targets[i].buffer.size();
        while (want != 0) {
            while (piece_offset == pieces[piece].size()) {
                ++piece;
                piece_offset = 0;
            }
            std::size_t take = std::min(want, pieces[piece].size() - piece_offset);
            std::memcpy(out, pieces[piece].data() + piece_offset, take);
            out += take;
            want -= take;
            piece_offset += take;
        }
        bool last = i + 1 == needed;
        std::uint8_t* d = targets[i].descriptor.data();
        store_le16(d + 8, std::uint16_t(targets[i].buffer.size()));
        store_le16(d + 10, 0);  // packet checksum: not provided (RXCSUM.PCSS unused)
        d[13] = last ? errors : 0;
        store_le16(d + 14, last && strip ? tci : 0);
        // Data and length are visible before DD tells a polling driver.
        std::atomic_thread_fence(std::memory_order_release);
        d[12] = std::uint8_t(rxd::STA_DD | (last ? rxd::STA_EOP | status : 0));
    }
    r(reg::RDH) = (head + needed) % n;
    if (shared_) shared_->publish_rdh(r(reg::RDH));

    std::size_t wire = frame.size() + 4;
    ++counters_.rx_frames;
    counters_.rx_bytes += frame.size();
    stat_add(reg::GPRC);
    stat_add(reg::TPR);
    stat_add_octets(reg::GORCL, wire);
    stat_add_octets(reg::TORL, wire);
    count_size_bin(reg::PRC64, wire);
    if (frame[0] & 1) stat_add(std::all_of(frame.begin(), frame.begin() + 6, [](std::uint8_t b) { return b == 0xFF; })
                                   ? reg::BPRC
                                   : reg::MPRC);

    signal_rx_frame();
    // Free descriptors at or below the RCTL.RDMTS fraction of the ring.
    unsigned rdmts = (rctl >> rctl::RDMTS_SHIFT) & 3;
    if (free - needed <= (n >> (1 + std::min(rdmts, 2u)))) raise(icr::RXDMT0);
    return true;
}

}  // namespace xover::e1000
