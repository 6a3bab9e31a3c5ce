#include "xover/virtio_net/virtio_net.hpp"

#include <algorithm>
#include <cstring>

#include <linux/virtio_ids.h>
#include <spdlog/spdlog.h>

#include "needs_csum.hpp"
#include "xover/net/ethernet.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::virtio_net {

namespace {

constexpr std::uint32_t kClassEthernet = 0x020000;

// Copies the chain's device-readable bytes [skip, skip + dst.size()) to dst.
void gather(const DescriptorChain& chain, std::size_t skip, std::span<std::uint8_t> dst) {
    std::size_t done = 0;
    for (const BufferSegment& s : chain.segments()) {
        if (s.device_writable) continue;
        if (skip >= s.bytes.size()) {
            skip -= s.bytes.size();
            continue;
        }
        std::size_t n = std::min(s.bytes.size() - skip, dst.size() - done);
        std::memcpy(dst.data() + done, s.bytes.data() + skip, n);
        done += n;
        skip = 0;
        if (done == dst.size()) return;
    }
}

// The frame bytes of a TX chain when they sit in one readable segment
// right after the header: sent straight from guest memory, no copy.
std::span<const std::uint8_t> contiguous_frame(const DescriptorChain& chain, std::size_t frame_len) {
    std::size_t skip = VirtioNet::kHeaderSize;
    for (const BufferSegment& s : chain.segments()) {
        if (skip >= s.bytes.size()) {
            skip -= s.bytes.size();
            continue;
        }
        if (s.bytes.size() - skip >= frame_len) return s.bytes.subspan(skip, frame_len);
        return {};
    }
    return {};
}

vmm::RateLimitedLog g_tx_log;
vmm::RateLimitedLog g_rx_log;

}  // namespace

VirtioNet::VirtioNet(vmm::GuestMemory& memory, vmm::MsiController& msi, vmm::IrqLine& intx, net::Backend& backend,
                     const net::MacAddress& mac, unsigned msix_vectors)
    : VirtioPciDevice(Identity{.virtio_device_id = VIRTIO_ID_NET, .class_code = kClassEthernet, .subsystem = 1},
                      kQueueCount, kQueueSize, memory, msi, intx, msix_vectors),
      backend_(backend),
      mac_(mac),
      link_up_(backend.link_up()),
      tx_buffer_(kMaxFrame) {}

std::uint64_t VirtioNet::device_features() const { return kDeviceFeatures; }

void VirtioNet::net_config(const net::MacAddress& mac, bool link_up, std::uint64_t offset,
                           std::span<std::uint8_t> data) {
    // struct virtio_net_config up to max_virtqueue_pairs.
    std::uint8_t cfg[10] = {};
    std::memcpy(cfg, mac.bytes.data(), 6);
    cfg[6] = link_up ? spec::net::kStatusLinkUp : 0;
    cfg[8] = 1;  // max_virtqueue_pairs
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

void VirtioNet::read_device_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    net_config(mac_, link_up_, offset, data);
}

void VirtioNet::queue_notified(unsigned index) {
    if (index == kTxQueue) {
        process_tx();
    } else if (index == kRxQueue) {
        // The guest added RX buffers; a backend holding a frame retries
        // (from its own thread). Further RX notifications are not needed
        // until we run dry again.
        // With crossover, producers continue from the shared position.
        if (shared_) resume_rx_from_producers();
        queue(kRxQueue).disable_notifications();
        rx_space_returned();
    }
}

// Producers continue from the RX position they published. A position no
// producer could have reached (a hostile peer wrote the page) is ignored
// and counted: our guest's queue then goes on from where we know it is.
void VirtioNet::resume_rx_from_producers() {
    if (!queue_live(kRxQueue)) return;
    Virtqueue& rx = queue(kRxQueue);
    if (!rx.resume_at_published(rx.visible_position(std::uint16_t(shared_->owner_rdh()))))
        ++stats_.rx_bad_peer_position;
}

void VirtioNet::activated() {
    link_up_ = carrier();
    publish_tx_queue();
    queue(kRxQueue).disable_notifications();
    if (shared_) {
        // Producers read the used index to find where a dead one stopped
        // (Virtqueue::visible_position): it starts at 0, whatever the
        // driver left in that memory.
        queue(kRxQueue).publish_used();
        publish_rx_config();  // also wakes producers
    } else {
        backend_.rx_space_available();
    }
    process_tx();
}

void VirtioNet::device_reset() {
    tx_stalled_ = false;
    if (port_) port_->abandon_tx();  // parked chains belong to the old rings
    forget_window_heads();           // before a window peer could see the new ring
    publish_tx_queue();
    link_up_ = carrier();
    rx_changes_.forget();  // a new page: everything goes out
    publish_rx_config();
}

void VirtioNet::resume_tx() {
    std::lock_guard lock(mutex_);
    tx_stalled_ = false;
    process_tx();
}

void VirtioNet::retry_rx() {
    std::lock_guard lock(mutex_);
    using Settle = nic::OwnerRxChanges::Settle;
    Settle settled = port_ ? rx_changes_.settle(*port_) : Settle::Nothing;
    if (settled == Settle::StillHeld) return;  // another retry is due
    if (settled == Settle::Settled) rx_space_returned();  // producers that found the old queue wait for this
    if (!std::exchange(rx_retry_pending_, false)) return;
    backend_.rx_space_available();
}

void VirtioNet::link_changed() {
    std::lock_guard lock(mutex_);
    bool up = carrier();
    if (up == link_up_) return;
    link_up_ = up;
    config_changed();
}

// ---------------------------------------------------------------------- TX

net::Backend::SendResult VirtioNet::send_frame(std::span<const std::uint8_t> frame, std::uint16_t head) {
    return port_ ? port_->send_completable(frame, head) : backend_.send(frame);
}

void VirtioNet::drop_tx(std::uint64_t& counter, const char* why) {
    ++counter;
    count_hostile();
    if (g_tx_log.allow()) spdlog::warn("virtio-net {}: dropping TX chain: {}", mac_.to_string(), why);
}

void VirtioNet::process_tx() {
    if (tx_stalled_ || !queue_live(kTxQueue)) return;
    Virtqueue& q = queue(kTxQueue);
    // A TX handoff run whose chains were all moved and completed elsewhere
    // ends here: our used ring continues where the movers left it.
    if (std::uint32_t used = 0; port_ && port_->reclaim_tx(used)) q.continue_used_at(std::uint16_t(used));
    complete_waiting_tx_heads();
    bool completed = false;
    for (;;) {
        auto st = q.pop(tx_chain_);
        if (st == Virtqueue::PopStatus::Empty) {
            if (q.enable_notifications()) continue;  // more arrived while re-arming
            break;
        }
        if (st == Virtqueue::PopStatus::Broken) {
            count_hostile();
            needs_reset(to_string(q.error()));
            break;
        }
        WindowTx w = try_window(tx_chain_);
        if (w == WindowTx::Lent) continue;  // used later, when the peer's guest returns the buffer
        if (w == WindowTx::Busy) {
            q.unpop();
            tx_stalled_ = true;
            ++stats_.tx_busy;
            break;
        }
        TxOutcome outcome = transmit_chain(tx_chain_);
        if (outcome == TxOutcome::Done && port_ && port_->tx_parking() &&
            !port_->park_completion(tx_chain_.head()))
            outcome = TxOutcome::Busy;  // during a run, completions go in its order
        else if (outcome == TxOutcome::Done && port_ && port_->tx_parking())
            outcome = TxOutcome::Parked;
        if (outcome == TxOutcome::Busy) {
            // Lossless: the chain stays available and is retried first.
            q.unpop();
            tx_stalled_ = true;
            ++stats_.tx_busy;
            break;
        }
        if (outcome == TxOutcome::Parked) continue;  // whoever moves it adds the used element
        std::uint16_t head = tx_chain_.head();
        complete_tx_heads({&head, 1});  // the guest may reuse buffers as soon as possible
        completed = true;
    }
    if (port_) port_->end_batch();  // peers see the batch, one interrupt each
    if (completed) maybe_interrupt(kTxQueue);  // one interrupt per batch
    if (port_ && port_->take_tx_interrupt()) interrupt_queue(kTxQueue);  // the movers asked the ring already
    complete_window_heads();
}

VirtioNet::TxOutcome VirtioNet::transmit_chain(const DescriptorChain& chain) {
    if (chain.writable_bytes() != 0) {
        drop_tx(stats_.tx_write_only, "device-writable descriptor in a TX chain");
        return TxOutcome::Done;
    }
    std::uint64_t total = chain.readable_bytes();
    if (total < kHeaderSize + net::kEthernetHeader) {
        drop_tx(stats_.tx_too_short, "shorter than header + Ethernet header");
        return TxOutcome::Done;
    }
    std::size_t frame_len = std::size_t(total - kHeaderSize);
    if (frame_len > kMaxFrame) {
        drop_tx(stats_.tx_oversize, "frame larger than 64 KiB");
        return TxOutcome::Done;
    }
    spec::net::Header hdr{};
    static_assert(sizeof hdr == kHeaderSize);
    gather(chain, 0, std::span(reinterpret_cast<std::uint8_t*>(&hdr), sizeof hdr));
    if (hdr.gso_type != spec::net::kGsoNone) {
        drop_tx(stats_.tx_gso, "segmentation offload requested but not offered");
        return TxOutcome::Done;
    }
    bool needs_csum = hdr.flags & spec::net::kHeaderNeedsCsum;
    if (needs_csum && !negotiated(spec::net::kFeatureCsum)) {
        // Not allowed without CSUM; send the frame as the guest built it.
        ++stats_.tx_csum_not_negotiated;
        count_hostile();
        needs_csum = false;
    }

    // A crossover port classifies, filters and copies the frame, and the
    // peer's model may check its sums: reading the guest's buffer for each
    // would let the guest change the frame in between (a filter passed by
    // one destination, "checksum good" on other bytes). So it gets one
    // copy, read once, as a NIC's FIFO would; a backend's one syscall reads
    // the buffer once by itself.
    std::span<const std::uint8_t> frame = needs_csum || port_ ? std::span<const std::uint8_t>{}
                                                              : contiguous_frame(chain, frame_len);
    if (frame.empty()) {
        // Split across descriptors, read by the crossover, or we must
        // write the checksum (never into the guest's buffer): copy once.
        std::span<std::uint8_t> copy(tx_buffer_.data(), frame_len);
        gather(chain, kHeaderSize, copy);
        if (needs_csum && !complete_checksum(copy, hdr.csum_start, hdr.csum_offset)) {
            drop_tx(stats_.tx_bad_csum, "csum_start/csum_offset outside the frame");
            return TxOutcome::Done;
        }
        frame = copy;
    }

    switch (send_frame(frame, chain.head())) {
    case net::Backend::SendResult::Busy: return TxOutcome::Busy;
    case net::Backend::SendResult::Deferred:
        ++stats_.tx_frames;
        ++stats_.tx_parked;
        stats_.tx_bytes += frame.size();
        return TxOutcome::Parked;
    case net::Backend::SendResult::Dropped: ++stats_.tx_dropped_backend; break;
    case net::Backend::SendResult::Sent:
        ++stats_.tx_frames;
        stats_.tx_bytes += frame.size();
        break;
    }
    return TxOutcome::Done;
}

// ---------------------------------------------------------------------- RX

bool VirtioNet::deliver(std::span<const std::uint8_t> frame) {
    std::lock_guard lock(mutex_);
    if (!shared_) return deliver_locked(frame);
    // Crossover peers fill this queue too: one producer at a time, each
    // continuing from the position the previous one published.
    // Never a wait here (the device lock is held): a peer in the middle of
    // a batch has the queue for a moment, so the backend keeps the frame
    // and the crossover's retry timer brings it back.
    nic::ProducerLock producer(shared_);
    if (producer.failed()) {
        ++stats_.rx_queue_locked;
        rx_retry_pending_ = true;
        port_->retry_later(std::chrono::milliseconds(1));
        return false;
    }
    resume_rx_from_producers();
    bool taken = deliver_locked(frame);
    if (queue_live(kRxQueue)) shared_->publish_rdh(queue(kRxQueue).next_avail());
    return taken;
}

bool VirtioNet::deliver_locked(std::span<const std::uint8_t> frame) {
    if (!queue_live(kRxQueue)) {
        ++stats_.rx_not_ready;
        return false;
    }
    RxOutcome r = fill_rx(frame);
    if (r == RxOutcome::Starved && queue(kRxQueue).enable_notifications()) {
        // Buffers arrived while we were asking to be told about them.
        r = fill_rx(frame);
    }
    switch (r) {
    case RxOutcome::Delivered:
    case RxOutcome::Dropped: return true;
    case RxOutcome::Starved: ++stats_.rx_no_buffer; return false;
    case RxOutcome::Broken: return false;
    }
    return false;
}

VirtioNet::RxOutcome VirtioNet::fill_rx(std::span<const std::uint8_t> frame) {
    Virtqueue& q = queue(kRxQueue);
    std::uint16_t used_before = q.used_index();
    std::uint64_t bad_before = rx_placer_.bad_buffers();
    auto outcome = rx_placer_.place(q, negotiated(spec::net::kFeatureMrgRxbuf), frame);
    for (std::uint64_t i = bad_before; i < rx_placer_.bad_buffers(); ++i) {
        ++stats_.rx_bad_buffer;
        count_hostile();
        if (g_rx_log.allow()) spdlog::warn("virtio-net {}: RX buffer too small to use", mac_.to_string());
    }
    if (q.used_index() != used_before) maybe_interrupt(kRxQueue);
    switch (outcome) {
    case RxPlacer::Outcome::Delivered:
        ++stats_.backend_rx.frames;
        stats_.backend_rx.bytes += frame.size();
        return RxOutcome::Delivered;
    case RxPlacer::Outcome::Oversize: ++stats_.rx_oversize; return RxOutcome::Dropped;
    case RxPlacer::Outcome::Starved: return RxOutcome::Starved;
    case RxPlacer::Outcome::Broken:
        count_hostile();
        needs_reset(to_string(q.error()));
        return RxOutcome::Broken;
    }
    return RxOutcome::Broken;
}

// ----------------------------------------------------------------- crossover

void VirtioNet::attach_crossover(nic::NicPort& port) {
    std::lock_guard lock(mutex_);
    port_ = &port;
    shared_ = &port.shared();
    link_up_ = carrier();
    publish_rx_config();
}

// What a producer needs: where the RX queue is, what was negotiated, and
// the device-side position (next avail == used idx: every chain we pop
// for a frame is returned through the used ring).
void VirtioNet::publish_rx_config() {
    if (!shared_) return;
    nic::SharedNicState::RxRing ring;
    bool live_rx = queue_live(kRxQueue);
    if (live_rx) {
        const VirtqueueLayout& l = queue(kRxQueue).layout();
        ring.kind = nic::RxRingKind::VirtioSplit;
        ring.ring_gpa = l.desc;
        ring.avail_gpa = l.avail;
        ring.used_gpa = l.used;
        ring.ring_entries = l.size;
        ring.features = (negotiated(spec::kFeatureEventIdx) ? nic::kRxEventIdx : 0) |
                        (negotiated(spec::net::kFeatureMrgRxbuf) ? nic::kRxMergeable : 0) |
                        (negotiated(spec::kFeatureIndirectDesc) ? nic::kRxIndirect : 0);
    }
    // No batch starts with the old description once this returns; one in
    // flight may finish with it (nic/rx_change.hpp). Never waits: posted,
    // the change is settled by retry_rx().
    rx_changes_.make(*port_, {.ring = ring, .rdh = live_rx ? queue(kRxQueue).next_avail() : 0, .enabled = live_rx});
    interrupt_routing_changed();
    rx_space_returned();
}

// Where a peer's interrupt for queue q goes now (see kCrossoverRxVector).
nic::PeerInterrupt::Route VirtioNet::peer_irq_route(unsigned q) const {
    using Route = nic::PeerInterrupt::Route;
    if (!queue_live(q)) return Route::Off;
    if (!msix_in_use()) return Route::ViaOwner;            // INTx: ISR bit and level are ours to raise
    if (!queue_message_deliverable(q)) return Route::Off;  // masked or NO_VECTOR: PBA / nothing
    unsigned peers_hold = q == kRxQueue ? kCrossoverRxVector : kCrossoverTxVector;
    return queue_vector(q) == peers_hold ? Route::Direct : Route::ViaOwner;
}

nic::PeerInterrupt& VirtioNet::peer_interrupt(unsigned q) const {
    return q == kRxQueue ? shared_->virtio_net.peer_irq : shared_->virtio_net.peer_tx_irq;
}

void VirtioNet::interrupt_routing_changed() {
    if (!shared_) return;
    for (unsigned q : {kRxQueue, kTxQueue}) {
        auto route = peer_irq_route(q);
        if (route == peer_route_[q]) continue;
        peer_route_[q] = route;
        // Returns once no peer can still signal the old route (a masked
        // vector stays quiet); true: an interrupt was left pending meanwhile.
        if (peer_interrupt(q).set_route(route)) deliver_peer_interrupt(q);
        if (!queue_live(q)) peer_interrupt(q).take_pending();  // reset: nothing is owed
    }
}

// While a route is Off (masked), peers' interrupts wait in the shared
// page; the MSI-X table takes them over as its own pending bit (PBA), so an
// unmask delivers them once, with whatever the device itself left pending.
void VirtioNet::collect_external_interrupts() {
    if (!shared_) return;
    for (unsigned q : {kRxQueue, kTxQueue})
        if (peer_route_[q] == nic::PeerInterrupt::Off && queue_live(q) && peer_interrupt(q).take_pending())
            deliver_peer_interrupt(q);
}

// The peer already asked the ring (should_interrupt); only the transport
// decides now: vector (or its pending bit) or ISR + INTx.
void VirtioNet::deliver_peer_interrupt(unsigned q) {
    ++(q == kRxQueue ? stats_.rx_peer_interrupts : stats_.tx_peer_interrupts);
    interrupt_queue(q);
}

void VirtioNet::doorbell_rang() {
    std::lock_guard lock(mutex_);
    if (port_ && port_->take_tx_interrupt()) interrupt_queue(kTxQueue);
    for (unsigned q : {kRxQueue, kTxQueue})
        if (shared_ && peer_route_[q] == nic::PeerInterrupt::ViaOwner && peer_interrupt(q).take_pending())
            deliver_peer_interrupt(q);
    tx_stalled_ = false;
    process_tx();
}

// The guest returned RX buffers: the port may move frames a peer parked
// for us into them right here (TX handoff); the ring already decided the
// interrupt (event index), the transport delivers it.
void VirtioNet::rx_space_returned() {
    if (port_ && port_->rx_space_returned() != nic::NicPort::OwnRx::None) interrupt_queue(kRxQueue);
    backend_.rx_space_available();
}

// What a TX view needs to complete our chains from another process.
void VirtioNet::publish_tx_queue() {
    if (!port_) return;
    if (!queue_live(kTxQueue)) {
        port_->publish_tx_queue(nic::TxQueueKind::None, 0, 0, 0, 0, 0);
        return;
    }
    const VirtqueueLayout& l = queue(kTxQueue).layout();
    std::uint32_t flags = negotiated(spec::kFeatureEventIdx) ? nic::kTxEventIdx : 0;
    port_->publish_tx_queue(nic::TxQueueKind::VirtioSplit, l.size, l.desc, l.avail, l.used, flags);
    port_->set_tx_completion_pos(queue(kTxQueue).used_index());
}

// ------------------------------------------------------------------- stats

net::Counters VirtioNet::counters() const {
    std::lock_guard lock(mutex_);
    net::Counters out;
    const nic::RxTally rx = nic::received(stats_.backend_rx, port_);
    stats_.append_to(out, {.rx_frames = rx.frames, .rx_bytes = rx.bytes});
    append_transport_counters(out);
    if (port_) port_->append_counters(out);
    return out;
}

std::vector<net::CounterInfo> VirtioNet::counter_info() {
    std::vector<net::CounterInfo> out = Stats::info();
    for (auto& c : transport_counter_info()) out.push_back(std::move(c));
    return out;
}

}  // namespace xover::virtio_net
