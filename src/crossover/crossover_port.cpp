#include "xover/crossover/crossover_port.hpp"

#include <atomic>

#include <spdlog/spdlog.h>

#include "xover/crossover/client.hpp"

namespace xover::crossover {

CrossoverPort::CrossoverPort(std::string name, std::uint32_t model_id, net::Backend& backend, bool backend_is_none)
    : name_(std::move(name)),
      backend_(backend),
      backend_is_none_(backend_is_none),
      page_(SharedStatePage::create("xover-nic-state-" + name_, model_id)),
      doorbell_(kvm::EventFd::create()) {}

CrossoverPort::~CrossoverPort() = default;

bool CrossoverPort::carrier() const {
    if (!table_.peers().empty()) return true;
    return !backend_is_none_ && backend_.link_up();
}

CrossoverPort::Peer* CrossoverPort::find(const PeerLink* link) {
    for (Peer& p : peers_)
        if (p.link.get() == link) return &p;
    return nullptr;
}

bool CrossoverPort::add_link(std::shared_ptr<PeerLink> link) {
    auto writer = make_peer_rx_writer(link->peer_model);
    if (!writer) {
        ++c_.links_refused;
        spdlog::error("{}: crossover link {} to {}: unknown peer model '{}'", name_, link->id, link->peer_vm,
                      link->peer_model);
        return false;
    }
    Peer* slot = find(nullptr);
    if (!slot || !table_.add(link)) {
        ++c_.links_refused;
        spdlog::error("{}: crossover link {} to {}: too many links", name_, link->id, link->peer_vm);
        return false;
    }
    slot->link = std::move(link);
    slot->writer = std::move(writer);
    slot->irq_pending = false;
    ++c_.links_made;
    // The peer may have found our ring full before the link existed here.
    rx_space_returned();
    return true;
}

std::shared_ptr<PeerLink> CrossoverPort::remove_link(std::uint64_t link_id) {
    for (Peer& p : peers_) {
        if (!p.link || p.link->id != link_id) continue;
        if (open_ == &p) close_open();  // never happens between batches; be safe
        table_.remove(link_id);
        ++c_.links_torn_down;
        std::shared_ptr<PeerLink> gone = std::move(p.link);
        p = Peer{};
        return gone;
    }
    return nullptr;
}

// ------------------------------------------------------------------ send

net::Backend::SendResult CrossoverPort::send(std::span<const std::uint8_t> frame) {
    auto result = table_.classify(frame);
    switch (result.verdict) {
    case PeerTable::Verdict::Peer:
        if (Peer* p = find(result.peer)) return to_peer(*p, frame, Mode::Lossless);
        return to_backend(frame);
    case PeerTable::Verdict::Group: {
        // The physical path first: if it is busy the frame stays pending
        // and no peer has seen it yet (no duplicates on retry).
        auto r = to_backend(frame);
        if (r == net::Backend::SendResult::Busy) return r;
        ++c_.tx_group_frames;
        bool any = r == net::Backend::SendResult::Sent;
        for (Peer& p : peers_)
            if (p.link && to_peer(p, frame, Mode::BestEffort) == net::Backend::SendResult::Sent) any = true;
        return any ? net::Backend::SendResult::Sent : net::Backend::SendResult::Dropped;
    }
    case PeerTable::Verdict::Unknown:
        if (report_) {
            if (auto dst = frame_destination(frame); dst && table_.should_report(*dst, std::chrono::steady_clock::now())) {
                ++c_.frames_seen_reported;
                report_(*dst);
            }
        }
        return to_backend(frame);
    case PeerTable::Verdict::Malformed: break;
    }
    return to_backend(frame);
}

net::Backend::SendResult CrossoverPort::to_backend(std::span<const std::uint8_t> frame) {
    auto r = backend_.send(frame);
    if (r == net::Backend::SendResult::Sent) {
        ++c_.tx_backend_frames;
        c_.tx_backend_bytes += frame.size();
    } else if (r == net::Backend::SendResult::Dropped) {
        ++c_.dropped_backend;
    }
    return r;
}

// Takes the peer's producer lock for the rest of the batch (one lock held
// at a time: switching peers publishes and releases the previous one, so
// two senders can never deadlock on each other's rings).
bool CrossoverPort::open(Peer& peer) {
    if (open_ == &peer) return true;
    close_open();
    SharedNicState& state = peer.link->peer_state();
    if (!lock_producer(state)) return false;
    open_ = &peer;
    peer.begin = peer.writer->begin(peer.link->peer_memory, state);
    return true;
}

void CrossoverPort::close_open() {
    if (!open_) return;
    Peer& p = *open_;
    open_ = nullptr;
    if (p.begin == PeerRxWriter::Begin::Ready && p.writer->finish()) p.irq_pending = true;
    ProducerSlot& slot = p.link->counters();
    if (p.batch_frames) {
        slot.frames.fetch_add(p.batch_frames, std::memory_order_relaxed);
        slot.bytes.fetch_add(p.batch_bytes, std::memory_order_relaxed);
        slot.copies.fetch_add(p.batch_frames, std::memory_order_relaxed);
        p.batch_frames = p.batch_bytes = 0;
    }
    p.link->peer_state().unlock_producer();
}

net::Backend::SendResult CrossoverPort::to_peer(Peer& peer, std::span<const std::uint8_t> frame, Mode mode) {
    using R = net::Backend::SendResult;
    if (!open(peer)) {
        // Only a producer that died mid-batch holds a lock this long.
        ++c_.dropped_lock_timeout;
        peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
        return R::Dropped;
    }
    SharedNicState& state = peer.link->peer_state();
    auto wait_for_peer = [&] {
        // Set the flag, then look again (the owner publishes, then reads
        // the flag): one of the two sides sees the other.
        state.producer_waiting.store(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    };
    if (peer.begin == PeerRxWriter::Begin::NotReady) {
        if (mode == Mode::BestEffort) {
            ++c_.dropped_group_peer_full;
            return R::Dropped;
        }
        wait_for_peer();
        peer.begin = peer.writer->begin(peer.link->peer_memory, state);
        if (peer.begin == PeerRxWriter::Begin::NotReady) {
            ++c_.tx_busy_peer_not_ready;
            return R::Busy;
        }
    }
    if (peer.begin == PeerRxWriter::Begin::Broken) {
        ++c_.dropped_bad_ring;
        peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
        return R::Dropped;
    }
    auto st = peer.writer->write(frame);
    if (st == PeerRxWriter::Status::Full) {
        if (mode == Mode::BestEffort) {
            ++c_.dropped_group_peer_full;
            peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
            return R::Dropped;
        }
        wait_for_peer();
        peer.writer->arm_space_notification();
        st = peer.writer->write(frame);
        if (st == PeerRxWriter::Status::Full) {
            ++c_.tx_busy_peer_full;
            return R::Busy;
        }
    }
    switch (st) {
    case PeerRxWriter::Status::Written:
        ++c_.tx_crossover_frames;
        c_.tx_crossover_bytes += frame.size();
        c_.bytes_copied += frame.size();
        ++peer.batch_frames;
        peer.batch_bytes += frame.size();
        ++c_.batch_frames;
        c_.batch_bytes += frame.size();
        return R::Sent;
    case PeerRxWriter::Status::Oversize: ++c_.dropped_oversize; break;
    case PeerRxWriter::Status::Bad: ++c_.dropped_bad_descriptor; break;
    case PeerRxWriter::Status::Full: break;
    }
    peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
    return R::Dropped;
}

void CrossoverPort::end_batch() {
    close_open();
    bool any = false;
    for (Peer& p : peers_) {
        if (!p.irq_pending) continue;
        p.irq_pending = false;
        p.link->interrupt_peer();
        ++c_.peer_interrupts;
        any = true;
    }
    if (c_.batch_frames) {
        OwnerCounters& own = page_.state().owner;
        own.tx_frames.fetch_add(c_.batch_frames, std::memory_order_relaxed);
        own.tx_bytes.fetch_add(c_.batch_bytes, std::memory_order_relaxed);
        c_.batch_frames = c_.batch_bytes = 0;
        any = true;
    }
    if (any) ++c_.batches;
}

// ------------------------------------------------------------------- RX

void CrossoverPort::rx_space_returned() {
    // The owner published RDT (or its ring) before this; see to_peer().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!page_.state().take_producer_waiting()) return;
    // We do not know which producer waited: wake every peer (rare: only
    // after a ring ran full).
    for (Peer& p : peers_) {
        if (!p.link) continue;
        p.link->ring_peer_doorbell();
        ++c_.doorbells_rung;
    }
}

void CrossoverPort::append_counters(net::Counters& out) const {
    out.insert(out.end(), {
        {"xover_links", table_.peers().size()},
        {"xover_links_made", c_.links_made},
        {"xover_links_torn_down", c_.links_torn_down},
        {"xover_links_refused", c_.links_refused},
        {"xover_tx_frames", c_.tx_crossover_frames},
        {"xover_tx_bytes", c_.tx_crossover_bytes},
        {"xover_bytes_copied", c_.bytes_copied},
        {"xover_tx_backend_frames", c_.tx_backend_frames},
        {"xover_tx_backend_bytes", c_.tx_backend_bytes},
        {"xover_tx_group_frames", c_.tx_group_frames},
        {"xover_busy_peer_full", c_.tx_busy_peer_full},
        {"xover_busy_peer_not_ready", c_.tx_busy_peer_not_ready},
        {"xover_dropped_oversize", c_.dropped_oversize},
        {"xover_dropped_bad_descriptor", c_.dropped_bad_descriptor},
        {"xover_dropped_bad_ring", c_.dropped_bad_ring},
        {"xover_dropped_lock_timeout", c_.dropped_lock_timeout},
        {"xover_dropped_group_peer_full", c_.dropped_group_peer_full},
        {"xover_dropped_backend", c_.dropped_backend},
        {"xover_peer_interrupts", c_.peer_interrupts},
        {"xover_batches", c_.batches},
        {"xover_doorbells_rung", c_.doorbells_rung},
        {"xover_frames_seen_reported", c_.frames_seen_reported},
    });
}

}  // namespace xover::crossover
