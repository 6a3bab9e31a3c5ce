// Receive: address and VLAN filtering, then one frame into as many receive
// buffers as it needs (from RDH up to RDT), descriptor write-back, RDH
// advance and the RXT0 / RXDMT0 / RXO causes.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "xover/byte_order.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/e1000/rx_delivery.hpp"
#include "xover/e1000/rx_filter.hpp"

namespace xover::e1000 {

namespace {
constexpr std::size_t kMaxStandardFrame = 1522;  // with FCS and one VLAN tag

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

bool E1000::deliver(std::span<const std::uint8_t> frame) {
    std::lock_guard lock(mutex_);
    if (!shared_) return deliver_locked(frame);
    // Crossover peers fill this ring too: one producer at a time.
    // Never a wait here (the device lock is held): a peer in the middle of
    // a batch has the ring for a moment, so the backend keeps the frame
    // and the crossover's retry timer brings it back.
    nic::ProducerLock producer(shared_);
    if (producer.failed()) {
        ++counters_.rx_ring_locked;
        rx_retry_pending_ = true;
        port_->retry_later(std::chrono::milliseconds(1));
        return false;
    }
    return deliver_locked(frame);
}

void E1000::retry_rx() {
    std::lock_guard lock(mutex_);
    using Settle = nic::OwnerRxChanges::Settle;
    Settle settled = port_ ? rx_changes_.settle(*port_) : Settle::Nothing;
    if (settled == Settle::StillHeld) return;  // another retry is due
    if (settled == Settle::Settled) rx_space_returned();  // producers that found the old ring wait for this
    if (!std::exchange(rx_retry_pending_, false)) return;
    backend_.rx_space_available();
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
    if (frame.size() + 4 > ((rctl & rctl::LPE) ? rx_delivery::kMaxFrame : kMaxStandardFrame)) {
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
    // plus the FCS unless RCTL.SECRC strips it; checksums checked.
    rx_delivery::Delivery delivery(frame, {r(reg::CTRL), r(reg::VET), rctl, r(reg::RXCSUM)});
    std::size_t total = delivery.size();
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

    rx_delivery::Targets targets;
    std::uint64_t base = (std::uint64_t(r(reg::RDBAH)) << 32) | r(reg::RDBAL);
    std::uint32_t resolved = rx_delivery::resolve(memory_, base, n, head, needed, total, buffer_size, targets);
    if (resolved != needed) {
        ++counters_.rx_bad_address;
        log_.warn("{}: receive descriptor {} or its buffer is outside guest memory; frame dropped", name_,
                  (head + resolved) % n);
        return true;
    }
    for (std::uint32_t i = 0; i < needed; ++i) {
        if (!port_ || !port_->shared_with_window_peer(load_le64(targets.descriptors[i].data()), targets.buffers[i].size()))
            continue;
        ++counters_.rx_window_conflict;
        log_.warn("{}: receive buffer {} is shared with the window peer's TX slots; frame dropped", name_,
                  (head + i) % n);
        return true;
    }
    delivery.write(targets);
    r(reg::RDH) = (head + needed) % n;
    if (shared_) shared_->publish_rdh(r(reg::RDH));

    std::size_t wire = frame.size() + 4;
    ++counters_.backend_rx.frames;
    counters_.backend_rx.bytes += frame.size();
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
