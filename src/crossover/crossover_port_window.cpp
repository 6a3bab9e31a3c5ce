// CrossoverPort's window mode (zero copy): waiting for the peer's halves,
// placing frames in place, the TX half's moves between the element and
// private memory, and completing lent TX slots (ours, and the peer's for
// it). The copy path is in crossover_port.cpp, the TX handoff in
// crossover_port_handoff.cpp.
#include <spdlog/spdlog.h>

#include "xover/crossover/client.hpp"
#include "xover/crossover/crossover_port.hpp"

namespace xover::crossover {

namespace {
// How long frames wait for a window peer to map its halves (it does so
// right after the link is up; only a failed remap takes longer).
constexpr std::chrono::milliseconds kWindowMapPatience{2000};
}  // namespace

// A window link is up on our side before the peer has moved its RX half
// onto our element (each VM remaps on its own). Until then the peer's RX
// buffers in its window are out of our reach: the frame waits (Busy) and
// the peer rings our doorbell once it has mapped (see the factory's
// crossover_link_up), rather than being dropped.
bool CrossoverPort::awaiting_peer_window(Peer& peer) {
    if (peer.link->mode != LinkMode::Window) return false;
    nic::SharedNicState& state = peer.link->peer_state();
    // Mapped, and its window placed (a guest sizing its BARs has it at 0
    // for a moment): truly out of reach.
    auto mapped = [&] { return peer_rx_half(peer) != 0; };
    if (mapped()) return false;
    auto now = std::chrono::steady_clock::now();
    if (peer.window_wait_since == std::chrono::steady_clock::time_point{}) peer.window_wait_since = now;
    if (now - peer.window_wait_since >= kWindowMapPatience) {
        if (!peer.window_warned) {
            peer.window_warned = true;
            spdlog::warn("{}: window peer {} never mapped its window; frames for buffers there are dropped", name_,
                         peer.link->peer_vm);
        }
        return false;
    }
    // Flag, then look again: the peer publishes, then takes the flag.
    state.mark_producer_waiting();
    ++c_.window_map_waits;
    retry_later(mapped() ? std::chrono::milliseconds(1) : kWindowMapPatience);
    return true;
}

// A window link shares the peer's window and ring area, never its RAM
// (least sharing): a peer whose driver keeps its RX ring or RX buffers
// elsewhere is out of our reach, and frames for it are dropped and
// counted, as a device behind an IOMMU that maps only those would drop
// them. Said once per link, in the sender's log.
void CrossoverPort::warn_out_of_reach(Peer& peer) {
    if (peer.link->mode != LinkMode::Window || peer.reach_warned) return;
    peer.reach_warned = true;
    spdlog::warn("{}: window link {} to {}: its RX ring or buffers are outside its window (BAR2) and ring area "
                 "(BAR3), all a window link shares; frames for it are dropped (a driver that keeps them in RAM "
                 "needs mode=copy)",
                 name_, peer.link->id, peer.link->peer_vm);
}

void CrossoverPort::set_window_link(std::uint64_t link_id) {
    window_link_ = link_id;
    window_peer_ = nullptr;  // loans over an older link come back at the next reclaim (a new ring)
    for (Peer& p : peers_)
        if (p.link && p.link->id == link_id) window_peer_ = &p;
    window_tx_pending_.store(window_peer_ != nullptr, std::memory_order_relaxed);
    window_tx_leaving_ = false;
    // (Only a model whose TX completions a peer writes asks begin_tx_completion.)
    if (window_peer_) tx_used_shared_ = true;
}

// Conservative: a ring that ever had a frame is not fresh, however often
// its guest set it up again since. Frames over links count in the
// producers' slots (which count since our process started, whichever
// links used them) and in what we moved from a peer's handoff; our own
// backend's count here.
bool CrossoverPort::rx_fresh() const {
    return crossover_rx().frames == 0 && !slow_rx_placed_.load(std::memory_order_relaxed);
}

std::optional<bool> CrossoverPort::window_tx_may_share() {
    Peer* peer = window_peer_;
    if (!peer || !window_ || window_tx_leaving_) return false;
    if (peer_rx_half(*peer) == 0) {
        // Flag, then look again: its mapping then rings our doorbell.
        peer->link->peer_state().mark_producer_waiting();
        if (peer_rx_half(*peer) == 0) return std::nullopt;
    }
    if (!open(*peer)) {
        retry_later(std::chrono::milliseconds(1));
        return std::nullopt;
    }
    bool fresh = !tx_taken_ && peer->link->peer_state().window_rx_fresh.load(std::memory_order_acquire) != 0;
    // Its position is still where its guest set the ring up: nobody placed
    // a frame there since it said fresh (a ring not set up yet is fresh).
    if (peer->begin == nic::RxView::Begin::Ready) fresh = fresh && peer->rx_view->position() == 0;
    if (peer->begin == nic::RxView::Begin::Broken) fresh = false;
    close_open();
    return fresh;
}

void CrossoverPort::window_tx_settled(bool shared) {
    window_tx_pending_.store(false, std::memory_order_relaxed);
    if (window_tx_leaving_)
        ++c_.window_tx_left;
    else if (!shared)
        ++c_.window_tx_private;
    window_tx_leaving_ = false;
}

// Zero copy holds while TX slot k and the peer's RX buffer k are held by
// one guest at a time, which needs both rings to move in step. A peer
// whose next buffer is not our slot (its guest reset its RX ring, or a
// frame it dropped put the rings out of step) would have the copy path
// write into its buffer, which is one of our TX slots our guest may be
// filling. So our TX half leaves the element first: on the I/O thread with
// the vCPUs paused (settle_window_tx), since another of our vCPUs may be
// writing a slot now. Frames to the peer wait until then, and are copied
// after (a link whose TX half is private).
nic::NicPort::WindowSend CrossoverPort::window_out_of_step() {
    if (!window_tx_leaving_) {
        window_tx_leaving_ = true;
        window_tx_pending_.store(true, std::memory_order_relaxed);
    }
    retry_later(std::chrono::milliseconds(1));
    return WindowSend::Busy;
}

// Our guest reset its TX ring (abandon_tx) while our TX half is on the
// element: it now believes every TX slot free, and the peer's guest may
// not have read the frames in them yet. The half leaves the element here,
// in the exit of that reset, before our guest runs again (the I/O thread's
// pause would come too late: the guest writes slots without an exit). Its
// other vCPUs do not write TX slots in the middle of its own reset, so the
// mapping can change under them (DmaWindow::detach_running).
void CrossoverPort::leave_window_on_reset() {
    if (!window_ || !window_->attached(DmaWindow::Half::Tx) || !tx_taken_) return;
    take_tx_half_off(Remap::Running);
}

// The two ways in are the two reasons: a running detach comes only from
// our guest's own reset (leave_window_on_reset), a paused one only from a
// peer found out of step (window_out_of_step, then settle_window_tx).
void CrossoverPort::take_tx_half_off(Remap how) {
    const char* why = how == Remap::Running ? "our guest reset its TX ring"
                                            : "the peer's RX ring fell out of step with our TX ring";
    try {
        if (how == Remap::Running)
            window_->detach_running(DmaWindow::Half::Tx);
        else
            window_->detach(DmaWindow::Half::Tx);
    } catch (const std::exception& e) {
        // The half may still be on the element: copies into the peer's
        // buffers could then land in slots our guest writes. Nothing
        // better is left; say so.
        spdlog::error("{}: window link {}: taking our TX half off the element: {}; frames are copied", name_,
                      window_link_, e.what());
    }
    window_tx_leaving_ = true;
    window_tx_settled(false);
    spdlog::info("{}: window link {}: {}; our TX half left the element, frames are copied", name_, window_link_, why);
}

// A frame for the window peer before our TX half is settled would land in
// the peer's RX half and make its ring stale, so it waits: settling takes
// our I/O thread a moment (the retry timer brings it there).
bool CrossoverPort::window_tx_unsettled(Peer& peer) {
    if (&peer != window_peer_ || !window_tx_pending()) return false;
    // Not mapped yet: it may map while this frame is copied, so the frame
    // waits for the mapping first (as long as awaiting_peer_window's patience).
    if (peer_rx_half(peer) == 0) return awaiting_peer_window(peer);
    if (window_tx_leaving_)
        ++c_.window_leave_waits;
    else
        ++c_.window_map_waits;
    retry_later(std::chrono::milliseconds(1));
    return true;
}

bool CrossoverPort::shared_with_window_peer(std::uint64_t gpa, std::uint64_t length) const {
    if (!window_peer_ || !window_ || !window_->attached(DmaWindow::Half::Rx)) return false;
    std::uint64_t rx_half = window_->half_gpa(DmaWindow::Half::Rx);
    return rx_half != 0 && gpa < rx_half + window_->half_size() && gpa + length > rx_half;
}

// Zero copy: our TX half and the peer's RX half are one element, so a
// frame in TX slot k (at TX-half offset k*2048) already is in the buffer
// of the peer's RX descriptor k, if the peer's guest put it at RX-half
// offset k*2048 and its ring is at k. Only the completion is written.
nic::NicPort::WindowSend CrossoverPort::send_in_window(std::uint32_t tx_index, std::uint64_t buffer_gpa,
                                                  std::uint32_t frame_offset, std::span<const std::uint8_t> frame) {
    Peer* peer = window_peer_;
    if (!peer || !window_) return WindowSend::NotApplicable;
    std::uint64_t slot_offset = std::uint64_t(tx_index) * kWindowSlotBytes;
    std::uint64_t tx_half = window_->half_gpa(DmaWindow::Half::Tx);
    if (!tx_half || buffer_gpa != tx_half + slot_offset || slot_offset + kWindowSlotBytes > window_->half_size() ||
        frame_offset + frame.size() > kWindowSlotBytes)
        return WindowSend::NotApplicable;
    nic::SharedNicState& state = peer->link->peer_state();
    if (frame_offset != peer->rx_view->window_frame_offset()) {
        // e1000 <-> virtio-net: one puts the frame at the buffer's start,
        // the other after virtio_net_hdr. Such a link stays in copy mode.
        ++c_.window_layout_mismatch;
        if (!peer->window_warned) {
            peer->window_warned = true;
            spdlog::info("{}: window link {} to {} ({}): buffer layouts differ, frames are copied", name_,
                         peer->link->id, peer->link->peer_vm, peer->link->peer_model);
        }
        return WindowSend::NotApplicable;
    }
    auto verdict = table_.classify(frame);
    if (verdict.verdict != PeerTable::Verdict::Peer || verdict.peer != peer->link.get())
        return WindowSend::NotApplicable;
    // Our TX half is not settled yet: the frame waits here, in its slot,
    // so that it crosses in place if the half goes onto the element (the
    // copy path would hold it, already read, for a copy).
    if (window_tx_unsettled(*peer)) return WindowSend::Busy;
    if (!window_->attached(DmaWindow::Half::Tx)) return WindowSend::NotApplicable;
    std::uint64_t rx_half = peer_rx_half(*peer);
    if (!rx_half) {
        // The peer has not mapped our element yet. The frame waits for it
        // rather than taking the copy path: that path would find the
        // peer's buffers only if the mapping landed in between, and then
        // copy a frame that needs no copy.
        if (awaiting_peer_window(*peer)) return WindowSend::Busy;
        rx_half = peer_rx_half(*peer);
        if (!rx_half) return WindowSend::NotApplicable;  // it never mapped: the copy path counts the drop
    }
    if (!open(*peer)) {
        // Another producer holds the peer's ring for a moment: the frame
        // waits for it, as a copy-path frame would, rather than being
        // copied by the copy path once the lock is free.
        ++c_.busy_peer_locked;
        retry_later(std::chrono::milliseconds(1));
        return WindowSend::Busy;
    }
    if (peer->begin == nic::RxView::Begin::NotReady && !begin_again(*peer)) return WindowSend::Busy;
    if (peer->begin != nic::RxView::Begin::Ready) return WindowSend::NotApplicable;
    if (!peer->rx_view->accepts(frame)) return WindowSend::NotApplicable;  // the copy path drops and counts it
    if (!peer->rx_view->in_place(frame)) return WindowSend::NotApplicable;  // the copy path rewrites it
    std::uint32_t length = std::uint32_t(frame.size());
    auto st = peer->rx_view->place(tx_index, rx_half + slot_offset, length);
    if (st == nic::RxView::Status::Full) {
        ask_for_room(*peer, true);
        st = peer->rx_view->place(tx_index, rx_half + slot_offset, length);
        if (st == nic::RxView::Status::Full) {
            ++c_.window_busy;
            return WindowSend::Busy;
        }
    }
    if (st != nic::RxView::Status::Written) {
        ++c_.window_not_in_place;
        return window_out_of_step();
    }
    // Recorded before the batch ends: the receiver must not see the frame
    // before it can see the loan (its process completes from the record).
    own_tx_view_->window_lend(page_.state(), peer->link->id, tx_index, peer->rx_view->position(),
                              peer->link->peer_memory, state);
    tx_taken_ = true;
    ++c_.window_frames;
    count_placed(*peer, length, false);
    return WindowSend::Placed;
}

// A frame our guest sent, now in a peer's ring or parked on its way
// there: our counters, and the batch's (end_batch publishes them).
void CrossoverPort::count_sent(std::uint32_t length, bool copied) {
    ++c_.tx_frames;
    c_.tx_bytes += length;
    if (copied) c_.bytes_copied += length;
    ++c_.batch_frames;
    c_.batch_bytes += length;
}

// ... placed in `peer`'s ring: also the peer's slot counts for this batch.
void CrossoverPort::count_placed(Peer& peer, std::uint32_t length, bool copied) {
    count_sent(length, copied);
    ++peer.batch_frames;
    peer.batch_bytes += length;
    if (copied) ++peer.batch_copies;
    peer.group_stalled = false;  // it receives again
}

// Our guest just returned RX buffers (RDT): complete the window peer's TX
// slots whose frames they held, here, through the peer model's TX view, so
// that no thread of the peer wakes (the e1000's ledger; a model that keeps
// no such record lends nothing). False: the peer must do it itself (its
// walker is busy, a descriptor is out of our reach, or only it may raise
// its TX interrupt): the caller rings its doorbell.
bool CrossoverPort::complete_window_peer_tx() {
    Peer* peer = window_peer_;
    if (!peer || !peer->link || !peer->tx_view || !own_memory_) return true;
    nic::SharedNicState& sender = peer->link->peer_state();
    if (!peer->tx_view->window_lent(sender, peer->link->id)) return true;
    nic::SharedNicState& own = page_.state();
    // The sender's batches hold it (complete_window's rule); a batch in
    // progress means the sender is awake and completes at its end.
    if (!nic::try_lock_producer_briefly(own)) return false;
    auto done = peer->tx_view->complete_window(nic::TxView::Completer::Receiver, peer->link->peer_memory, sender,
                                               own_memory_, &own);
    own.unlock_producer();
    c_.window_completed_for_peer += done.completed;
    // The doorbell (our false) makes the peer raise what only it may.
    if (done.reported && raise_peer_tx(*peer, peer->tx_view->signal_remote(sender))) return false;
    return !done.busy && !done.unreachable;
}

// Our own lent TX slots, from our TX work: the same completion as the
// peer's process does (complete_window_peer_tx), through our model's view,
// holding the peer's producer lock as it does (our batch may hold it
// already). With no window peer every lent slot comes back: a completer in
// the former peer's process (an unlink, not a death) may still be
// mid-batch, and the view waits for its record lock.
nic::TxView::WindowCompletion CrossoverPort::complete_window_tx() {
    nic::SharedNicState& own = page_.state();
    if (!own_memory_ || !own_tx_view_->window_any(own)) return {};
    using Completer = nic::TxView::Completer;
    nic::TxView::WindowCompletion done;
    if (Peer* peer = window_peer_) {
        nic::SharedNicState& state = peer->link->peer_state();
        vmm::GuestMemory& memory = peer->link->peer_memory;
        bool held = open_ == peer;
        if (!held && !nic::try_lock_producer_briefly(state)) {
            // A live producer is mid-batch in the peer's ring: never wait
            // for it with our device lock held; look again in 1 ms.
            ++c_.reclaim_peer_locked;
            retry_later(std::chrono::milliseconds(1));
            return {.busy = true};
        }
        done = own_tx_view_->complete_window(Completer::Sender, *own_memory_, own, &memory, &state);
        if (!held) state.unlock_producer();
    } else {
        done = own_tx_view_->complete_window(Completer::Sender, *own_memory_, own, nullptr, nullptr);
    }
    if (done.busy) {
        ++c_.tx_completion_locked;
        retry_later(std::chrono::milliseconds(1));
    }
    return done;
}

bool CrossoverPort::window_holds(std::uint16_t head) const { return own_tx_view_->window_holds(page_.state(), head); }

void CrossoverPort::window_forget() { own_tx_view_->window_forget(page_.state()); }

}  // namespace xover::crossover
