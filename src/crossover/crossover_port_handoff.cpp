// CrossoverPort, the TX handoff half (rules in nic/tx_handoff.hpp): a frame
// for a peer whose RX ring is full is parked in this NIC's handoff instead
// of waiting for the peer's doorbell, and whoever is awake moves it:
//   - the peer's process, on its guest's RDT write / RX notify
//     (consume_parked), completing the frame in our TX ring through our
//     model's TX view and raising our TX interrupt;
//   - this process, at the end of any TX batch (drain_own_run).
// While a run is active every frame for that peer is parked, in order;
// anything else waits (backlog) until the run ends, so our TX ring has one
// completion writer at a time.
#include <spdlog/spdlog.h>

#include <cstring>

#include "xover/crossover/client.hpp"
#include "xover/crossover/crossover_port.hpp"

namespace xover::crossover {

net::Backend::SendResult CrossoverPort::send_completable(std::span<const std::uint8_t> frame, std::uint32_t token) {
    token_ = token;
    has_token_ = true;
    auto result = send(frame);
    has_token_ = false;
    return result;
}

// Only a lossless unicast frame with a completion, small enough for a slot,
// over a copy link, from a NIC without a window link (window completions
// have their own ledger) can wait in the handoff.
bool CrossoverPort::may_park(const Peer& peer, std::span<const std::uint8_t> frame, Mode mode) const {
    if (mode != Mode::Lossless || !has_token_ || frame.size() > nic::kHandoffSlotBytes) return false;
    if (peer.link->mode != LinkMode::Copy || window_peer_ != nullptr || !own_tx_view_) return false;
    return handoff().queue.kind.load(std::memory_order_relaxed) != std::uint32_t(nic::TxQueueKind::None);
}

bool CrossoverPort::start_run(Peer& peer) {
    nic::TxHandoff& h = handoff();
    // Held for one batch of moves without syscalls, and rarely by anyone
    // when no run is active: a holder we cannot wait out briefly sends us
    // down the doorbell path.
    if (!h.try_lock_briefly()) return false;
    bool ok = h.parked() == 0;  // a run we abandoned leaves nothing behind
    if (ok) {
        h.backlog.store(0, std::memory_order_relaxed);
        h.run.store(peer.link->id, std::memory_order_release);
        ++c_.handoff_runs;
    }
    h.unlock();
    return ok;
}

void CrossoverPort::park(std::span<const std::uint8_t> frame) {
    std::uint32_t length = std::uint32_t(frame.size());
    handoff().park(frame.data(), length, token_, token_ != kNoToken, tx_queue_.generation);
    ++c_.handoff_parked;
    count_sent(length, true);    // its copy into the peer's ring, whoever makes it
    c_.handoff_bytes += length;  // and the extra one into the slot
}

// A run is active: frames for its peer join it (even when the peer's ring
// has room again: they must not overtake the parked ones); anything else
// waits until the run ends, when the mover rings our doorbell.
net::Backend::SendResult CrossoverPort::send_during_run(std::span<const std::uint8_t> frame) {
    nic::TxHandoff& h = handoff();
    const std::uint64_t run = h.run.load(std::memory_order_relaxed);
    auto verdict = table_.classify(frame);
    if (!run_abandoned_ && verdict.verdict == PeerTable::Verdict::Peer && verdict.peer && verdict.peer->id == run) {
        if (find(verdict.peer) && has_token_ && frame.size() <= nic::kHandoffSlotBytes && !h.full()) {
            park(frame);
            return net::Backend::SendResult::Deferred;
        }
    }
    ++c_.handoff_backlog;
    h.backlog.store(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // Emptied before the mover could see the flag: nobody rings for us.
    if (h.parked() == 0) doorbell_.signal();
    return net::Backend::SendResult::Busy;
}

// Moves parked frames into the ring `rx` has open (its producer lock and
// the handoff lock held), completing each in the sender's ring through
// `view`, which the caller began (view_ok: it could; else no completion
// is written).
CrossoverPort::Moved CrossoverPort::move_parked(nic::TxHandoff& h, nic::RxView& rx, nic::TxView& view, bool view_ok) {
    Moved m;
    bool armed = false;
    nic::ParkedFrame f;
    while (nic::peek_parked(h, f)) {
        if (f.length) {
            // Read once: the sender's process could rewrite its slot.
            std::memcpy(scratch_.data(), f.bytes, f.length);
            std::span<const std::uint8_t> frame(scratch_.data(), f.length);
            if (!rx.accepts(frame)) {
                ++m.dropped;  // what the receiving NIC's filter does with it
            } else {
                auto st = rx.write(frame);
                if (st == nic::RxView::Status::Full && !armed) {
                    armed = true;
                    rx.arm_space_notification();
                    st = rx.write(frame);
                }
                if (st == nic::RxView::Status::Full) break;  // stays parked
                if (st == nic::RxView::Status::Written) {
                    ++m.delivered;
                    m.bytes += f.length;
                } else {
                    ++m.dropped;
                }
            }
        }
        if (f.completes && view_ok && f.generation == view.ring_generation()) view.complete(f.token);
        nic::pop_parked(h);
        ++m.records;
    }
    m.tx_irq = view_ok && view.finish();
    return m;
}

// End of one of our TX batches: we are awake, so move what fits now. The
// fence pairs with the receiver's after its RDT store: either it sees our
// parked frames, or we see its returned buffers here.
void CrossoverPort::drain_own_run() {
    nic::TxHandoff& h = handoff();
    const std::uint64_t run = h.run.load(std::memory_order_relaxed);
    if (run == 0 || h.parked() == 0 || !own_memory_) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    Peer* peer = nullptr;
    for (Peer& p : peers_)
        if (p.link && p.link->id == run) peer = &p;
    if (!peer) return;
    if (open_ != peer) {
        // Only briefly: a holder is the peer moving these very frames, or
        // its own slow path; then a timer brings us back.
        close_open();
        if (!try_lock_producer_briefly(peer->link->peer_state())) {
            retry_later(std::chrono::milliseconds(1));
            return;
        }
        open_ = peer;
        peer->begin = peer->rx_view->begin(peer_memory(*peer), peer->link->peer_state());
    }
    if (peer->begin != nic::RxView::Begin::Ready) return;  // the peer's process moves them once it can receive
    if (!h.try_lock()) return;  // the peer is moving them right now
    Moved m = move_parked(h, *peer->rx_view, *own_tx_view_, own_tx_view_->begin(*own_memory_, h));
    bool backlog = h.parked() == 0 && h.backlog.exchange(0, std::memory_order_acq_rel) != 0;
    h.moved_by_owner.fetch_add(m.records, std::memory_order_relaxed);
    h.unlock();
    c_.handoff_moved_self += m.records;
    c_.handoff_dropped += m.dropped;
    peer->batch_frames += m.delivered;
    peer->batch_bytes += m.bytes;
    peer->batch_copies += m.delivered;
    if (m.tx_irq) own_tx_irq_ = true;
    if (backlog) doorbell_.signal();  // our own waiting frame: the model resumes on the doorbell
}

// Our guest returned RX buffers: move what peers parked for us. We are in
// userspace for the RDT write / RX notify anyway; the sender sleeps on.
nic::NicPort::OwnRx CrossoverPort::consume_parked() {
    OwnRx own = OwnRx::None;
    if (!own_memory_ || !own_rx_view_) return own;
    nic::SharedNicState& state = page_.state();
    for (Peer& p : peers_) {
        if (!p.link || !p.tx_view) continue;
        nic::TxHandoff& h = nic::tx_handoff(p.link->peer_state());
        if (h.run.load(std::memory_order_acquire) != p.link->id || h.parked() == 0) continue;
        // Both locks are held for one batch without syscalls; a holder we
        // cannot wait out briefly is mid-batch (the sender then moves them
        // itself at its batch's end) or descheduled: then the sender's
        // doorbell, so that parked frames never wait for our next return.
        if (!try_lock_producer_briefly(state)) {
            p.link->ring_peer_doorbell();
            ++c_.handoff_lock_busy;
            continue;
        }
        if (!h.try_lock()) {
            state.unlock_producer();
            p.link->ring_peer_doorbell();
            ++c_.handoff_lock_busy;
            continue;
        }
        if (h.run.load(std::memory_order_relaxed) != p.link->id ||
            own_rx_view_->begin(*own_memory_, state) != nic::RxView::Begin::Ready) {
            h.unlock();  // receive is off: the sender keeps them until it is on
            state.unlock_producer();
            continue;
        }
        // A sender's TX ring we cannot reach (outside what the link
        // shares, or a description that makes no sense): its own process
        // moves them, completing them with its own memory; never pop a
        // record whose completion would be lost.
        if (!p.tx_view->begin(p.link->peer_memory, h)) {
            h.unlock();
            state.unlock_producer();
            p.link->ring_peer_doorbell();
            ++c_.handoff_unreachable;
            continue;
        }
        Moved m = move_parked(h, *own_rx_view_, *p.tx_view, true);
        nic::RxView::Notify notify = own_rx_view_->finish();
        nic::TxIrq irq = m.tx_irq ? p.tx_view->signal_remote(p.link->peer_state()) : nic::TxIrq::None;
        bool backlog = h.parked() == 0 && h.backlog.exchange(0, std::memory_order_acq_rel) != 0;
        h.moved_by_peer.fetch_add(m.records, std::memory_order_relaxed);
        h.unlock();
        state.unlock_producer();
        c_.handoff_moved_for_peers += m.records;
        c_.handoff_dropped += m.dropped;
        c_.moved_in.frames += m.delivered;
        c_.moved_in.bytes += m.bytes;
        if (notify == nic::RxView::Notify::Interrupt) own = OwnRx::Interrupt;
        if (notify == nic::RxView::Notify::Owner && own == OwnRx::None) own = OwnRx::Moderated;
        bool wake = raise_peer_tx(p, irq) || backlog;
        if (wake) {
            p.link->ring_peer_doorbell();
            ++c_.doorbells_rung;
        }
    }
    return own;
}

// Raises a peer's TX interrupt as its TX view said, after we completed its
// TX work. True: its doorbell must be rung (only its process may raise it).
bool CrossoverPort::raise_peer_tx(Peer& p, nic::TxIrq irq) {
    nic::SharedNicState& sender = p.link->peer_state();
    nic::PeerInterrupt* route = irq == nic::TxIrq::Routed ? p.tx_view->tx_route(sender) : nullptr;
    if (irq == nic::TxIrq::Routed && (!route || !p.link->peer_tx_irq)) irq = nic::TxIrq::Owner;  // no fd to write
    switch (irq) {
    case nic::TxIrq::None: return false;
    case nic::TxIrq::Signal:
        p.link->interrupt_peer();
        ++c_.handoff_tx_irq_signalled;
        return false;
    case nic::TxIrq::Owner:
        if (nic::tx_handoff(sender).tx_irq_owner.exchange(1, std::memory_order_acq_rel) != 0) return false;
        ++c_.handoff_tx_irq_via_owner;
        return true;
    case nic::TxIrq::Routed: break;
    }
    bool wake = false;
    switch (route->raise(p.link->producer_slot, [&] { p.link->interrupt_peer_tx(); }, [&] { wake = true; })) {
    case nic::PeerInterrupt::Outcome::Signalled: ++c_.handoff_tx_irq_signalled; break;
    case nic::PeerInterrupt::Outcome::WokeOwner: ++c_.handoff_tx_irq_via_owner; break;
    default: break;  // masked (left pending) or merged with another raise
    }
    return wake;
}

// The run's peer is gone: its frames will never be delivered. Complete them
// (dropped) so that our guest's TX ring does not hang, and let the model
// run (doorbell) to raise the interrupt and end the run. A peer that is
// gone but alive may be in the middle of moving them: then this is done
// from the next TX walk (reclaim_tx), on the retry timer, never waited for.
void CrossoverPort::complete_parked_locally() {
    nic::TxHandoff& h = handoff();
    if (!own_memory_) return;
    parked_orphaned_ = !h.try_lock_briefly();
    if (parked_orphaned_) {
        retry_later(std::chrono::milliseconds(1));
        return;
    }
    bool view_ok = own_tx_view_->begin(*own_memory_, h);
    nic::ParkedFrame f;
    std::uint64_t dropped = 0;
    while (nic::peek_parked(h, f)) {
        if (f.completes && view_ok && f.generation == own_tx_view_->ring_generation()) own_tx_view_->complete(f.token);
        nic::pop_parked(h);
        ++dropped;
    }
    if (view_ok && own_tx_view_->finish()) own_tx_irq_ = true;
    h.backlog.store(0, std::memory_order_relaxed);
    h.unlock();
    c_.handoff_dropped += dropped;
    if (dropped) spdlog::info("{}: {} parked frames dropped: their link went down", name_, dropped);
    doorbell_.signal();
}

void CrossoverPort::publish_tx_queue(nic::TxQueueKind kind, std::uint32_t entries, std::uint64_t ring,
                                     std::uint64_t avail, std::uint64_t used, std::uint32_t flags,
                                     std::uint32_t irq_interval_ns) {
    tx_queue_ = {.kind = kind,
                 .entries = entries,
                 .ring_gpa = ring,
                 .avail_gpa = avail,
                 .used_gpa = used,
                 .flags = flags,
                 .irq_interval_ns = irq_interval_ns,
                 .generation = tx_queue_.generation};
    // No lock: a seqcount (tx_handoff.hpp). This runs on every guest ITR
    // or TX ring write, and never waits for a consumer in mid-batch; a new
    // ring was abandoned first (abandon_tx), so no consumer completes old
    // tokens in it.
    nic::publish_tx_queue(handoff().queue, tx_queue_);
}

bool CrossoverPort::reclaim_tx(std::uint32_t& completion_pos) {
    if (parked_orphaned_) complete_parked_locally();  // a run's peer went while moving them
    nic::TxHandoff& h = handoff();
    if (h.run.load(std::memory_order_relaxed) == 0 || h.parked() != 0 || !h.try_lock()) return false;
    bool ended = h.parked() == 0;
    if (ended) {
        completion_pos = h.completion_pos.load(std::memory_order_relaxed);
        h.run.store(0, std::memory_order_release);
        h.backlog.store(0, std::memory_order_relaxed);
    }
    h.unlock();
    // An abandoned run's position is one of the ring the guest replaced.
    if (ended && std::exchange(run_abandoned_, false)) return false;
    return ended;
}

bool CrossoverPort::tx_parking() const { return handoff().run.load(std::memory_order_relaxed) != 0; }

void CrossoverPort::set_tx_completion_pos(std::uint32_t used) {
    nic::TxHandoff& h = handoff();
    if (h.run.load(std::memory_order_relaxed) == 0) h.completion_pos.store(used, std::memory_order_relaxed);
}

bool CrossoverPort::park_completion(std::uint32_t token) {
    nic::TxHandoff& h = handoff();
    if (h.run.load(std::memory_order_relaxed) == 0 || h.full()) return false;
    h.park(nullptr, 0, token, true, tx_queue_.generation);
    return true;
}

// The guest reset or moved its TX ring: parked tokens name descriptors that
// are no longer its. A new generation first, so no mover completes them in
// the new ring; then, with the handoff lock free at once, drop them and end
// the run. A mover in the middle of a batch is never waited for: it
// delivers what is parked as frames in flight (completing none), nothing
// more joins the run, and the run's end hands back no used position (it
// would be one of the old ring).
void CrossoverPort::abandon_tx() {
    leave_window_on_reset();
    nic::TxHandoff& h = handoff();
    ++tx_queue_.generation;
    nic::publish_tx_queue(h.queue, tx_queue_);
    if (h.run.load(std::memory_order_relaxed) == 0) return;
    if (!h.try_lock_briefly()) {
        run_abandoned_ = true;
        ++c_.handoff_abandoned_in_flight;
        return;
    }
    c_.handoff_dropped += h.parked();
    h.head.store(h.tail.load(std::memory_order_relaxed), std::memory_order_release);
    h.run.store(0, std::memory_order_release);
    h.backlog.store(0, std::memory_order_relaxed);
    h.unlock();
    run_abandoned_ = false;
}

bool CrossoverPort::take_tx_interrupt() {
    bool own = own_tx_irq_;
    own_tx_irq_ = false;
    nic::TxHandoff& h = handoff();
    bool remote = h.tx_irq_owner.load(std::memory_order_relaxed) != 0 &&
                  h.tx_irq_owner.exchange(0, std::memory_order_acq_rel) != 0;
    return own || remote;
}

// While a window peer may complete our lent heads (or some are lent
// still), our TX used ring's writer is whoever holds the handoff lock, at
// the shared completion position (virtio_net/window_loans.hpp). A holder
// keeps it for one batch of completions; one we cannot wait out briefly is
// descheduled or stopped, and our completions wait for the retry timer
// rather than our device lock waiting for it (a dead one is recovered).
// Once the peer is gone and nothing is lent, one more completion takes the
// position the peer's process left (it may have completed our last loans
// after our last completion); from then on the ring is ours alone.
nic::NicPort::TxCompletion CrossoverPort::begin_tx_completion(std::uint32_t& used) {
    // Asked only by a model whose TX completions a window peer's process
    // writes too (virtio-net: its loans); a window link joins two NICs of
    // one model.
    const bool sharing = window_peer_ || own_tx_view_->window_any(page_.state());
    if (!sharing && !tx_used_shared_) return TxCompletion::Own;
    nic::TxHandoff& h = handoff();
    if (!h.try_lock_briefly()) {
        ++c_.tx_completion_locked;
        retry_later(std::chrono::milliseconds(1));
        return TxCompletion::Busy;
    }
    tx_completion_locked_ = true;
    used = h.completion_pos.load(std::memory_order_relaxed);
    own_tx_view_->window_recover(page_.state(), used);
    tx_used_shared_ = sharing;
    return TxCompletion::Shared;
}

void CrossoverPort::end_tx_completion(std::uint32_t used) {
    nic::TxHandoff& h = handoff();
    h.completion_pos.store(used, std::memory_order_relaxed);
    if (tx_completion_locked_) h.unlock();
    tx_completion_locked_ = false;
}

}  // namespace xover::crossover
