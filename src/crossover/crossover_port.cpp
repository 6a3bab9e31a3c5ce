#include "xover/crossover/crossover_port.hpp"

#include <atomic>

#include <spdlog/spdlog.h>

#include "xover/crossover/client.hpp"

namespace xover::crossover {

CrossoverPort::CrossoverPort(std::string name, nic::ModelId model, net::Backend& backend, bool backend_is_none)
    : name_(std::move(name)),
      backend_(backend),
      backend_is_none_(backend_is_none),
      page_(SharedStatePage::create("xover-nic-state-" + name_, std::uint32_t(model))),
      doorbell_(kvm::EventFd::create()),
      own_tx_view_(make_tx_view(model)),
      own_rx_view_(make_rx_view(model)),
      scratch_(nic::kHandoffSlotBytes) {}

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
    auto model = model_by_name(link->peer_model);
    if (!model) {
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
    slot->rx_view = make_rx_view(*model);
    slot->irq_pending = false;
    slot->tx_view = make_tx_view(*model);
    start_drain(*slot);
    ++c_.links_made;
    // The peer may have found our ring full before the link existed here.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_waiting_producers();
    return true;
}

std::shared_ptr<PeerLink> CrossoverPort::remove_link(std::uint64_t link_id) {
    for (Peer& p : peers_) {
        if (!p.link || p.link->id != link_id) continue;
        if (open_ == &p) close_open();  // never happens between batches; be safe
        if (handoff().run.load(std::memory_order_relaxed) == link_id) complete_parked_locally();
        if (window_peer_ == &p) {  // every lent slot comes back (complete_window_tx: no peer)
            window_peer_ = nullptr, window_link_ = 0;
            window_tx_pending_.store(false, std::memory_order_relaxed);
            window_tx_leaving_ = false;
        }
        table_.remove(link_id);
        forget_group_peer(p);
        // Slow-path counts start again for whoever links next with that
        // MAC (slow_path_arrivals.hpp): both ends forget at link-down.
        const std::uint64_t peer_key = nic::mac_key(p.link->peer_mac.bytes.data());
        tally_.forget(peer_key);
        page_.state().slow_arrivals.forget(peer_key);
        // A peer that died mid-batch may hold our page's locks: free them
        // now, before a sender or our own slow path finds them held.
        page_.state().producer_lock.recover_if_abandoned();
        handoff().lock.recover_if_abandoned();
        // Nor may it leave our interrupt routes waiting for it (peer_interrupt.hpp).
        for (nic::PeerInterrupt* route : {own_rx_view_->rx_route(page_.state()), own_tx_view_->tx_route(page_.state())})
            if (route) route->forget_producer(p.link->peer_producer_slot);
        ++c_.links_torn_down;
        std::shared_ptr<PeerLink> gone = std::move(p.link);
        p = Peer{};
        return gone;
    }
    return nullptr;
}

// ------------------------------------------------------------------ send

net::Backend::SendResult CrossoverPort::send(std::span<const std::uint8_t> frame) {
    auto r = send_frame(frame);
    if (r != net::Backend::SendResult::Busy) tx_taken_ = true;
    return r;
}

net::Backend::SendResult CrossoverPort::send_frame(std::span<const std::uint8_t> frame) {
    if (handoff().run.load(std::memory_order_relaxed) != 0) return send_during_run(frame);
    auto result = table_.classify(frame);
    switch (result.verdict) {
    case PeerTable::Verdict::Peer:
        if (Peer* p = find(result.peer)) {
            if (p->draining && !drained(*p)) return net::Backend::SendResult::Busy;
            return to_peer(*p, frame, Mode::Lossless);
        }
        return to_backend(frame);
    case PeerTable::Verdict::Group: return send_group(frame);
    case PeerTable::Verdict::Unknown:
        if (report_) {
            if (auto dst = frame_destination(frame); dst && table_.should_report(*dst, std::chrono::steady_clock::now())) {
                ++c_.frames_seen_reported;
                report_(*dst);
            }
        }
        {
            auto r = to_backend(frame);
            if (r == net::Backend::SendResult::Sent) tally_.count(nic::mac_key(frame.data()));
            return r;
        }
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
    nic::SharedNicState& state = peer.link->peer_state();
    // Never a wait here: this is the sender's vCPU (or I/O) thread.
    if (!nic::try_lock_producer_briefly(state)) return false;
    open_ = &peer;
    peer.begin = peer.rx_view->begin(peer_memory(peer), state);
    return true;
}

// The peer's RX ring was not ready when the batch opened it: asks to be
// told once it is (the producer-waiting flag, set before looking again:
// one side sees the other), then looks again, through the same memory as
// open() (a window peer's RX buffers are reachable only through it).
// False: still not ready, the frame waits.
bool CrossoverPort::begin_again(Peer& peer) {
    nic::SharedNicState& state = peer.link->peer_state();
    state.mark_producer_waiting();
    peer.begin = peer.rx_view->begin(peer_memory(peer), state);
    if (peer.begin != nic::RxView::Begin::NotReady) return true;
    ++c_.busy_peer_not_ready;
    return false;
}

// The peer's ring is full: asks to be told when its guest returns buffers
// (virtio-net: a notification from the guest; `doorbell`: the peer's
// process rings ours, which a parked frame does not need), before the
// caller looks once more.
void CrossoverPort::ask_for_room(Peer& peer, bool doorbell) {
    if (doorbell) peer.link->peer_state().mark_producer_waiting();
    peer.rx_view->arm_space_notification();
}

// The window peer's RX half is our TX element while both sides have it
// mapped: its RX buffers there are reachable (see peer_window_memory.hpp).
// Through the window's own view of the element, so this holds whether our
// TX half is on it (zero copy) or stayed private (window_tx_may_share).
vmm::GuestMemory& CrossoverPort::peer_memory(Peer& peer) {
    if (&peer != window_peer_ || !window_) return peer.link->peer_memory;
    std::uint64_t rx_half = peer_rx_half(peer);
    if (!rx_half) return peer.link->peer_memory;
    window_memory_.bind(peer.link->peer_memory, rx_half, window_->tx_element(), window_->half_size());
    return window_memory_;
}

// Where the peer's guest sees its RX half, once the peer has moved that
// half onto our element for this link; 0 before (or while its guest has
// the BAR unplaced).
// seq_cst: awaiting_peer_window() looks again after flagging that it waits.
std::uint64_t CrossoverPort::peer_rx_half(Peer& peer) {
    nic::SharedNicState& state = peer.link->peer_state();
    if (state.window_rx_link.load(std::memory_order_seq_cst) != peer.link->id) return 0;
    return state.window_rx_gpa.load(std::memory_order_seq_cst);
}

void CrossoverPort::close_open() {
    if (!open_) return;
    Peer& p = *open_;
    open_ = nullptr;
    if (p.begin == nic::RxView::Begin::Ready) {
        switch (p.rx_view->finish()) {
        case nic::RxView::Notify::None: break;
        case nic::RxView::Notify::Interrupt: p.irq_pending = true; break;
        case nic::RxView::Notify::Owner: p.wake_pending = true; break;
        }
    }
    nic::ProducerSlot& slot = p.link->counters();
    if (p.batch_frames) {
        slot.frames.fetch_add(p.batch_frames, std::memory_order_relaxed);
        slot.bytes.fetch_add(p.batch_bytes, std::memory_order_relaxed);
        slot.copies.fetch_add(p.batch_copies, std::memory_order_relaxed);
        p.batch_frames = p.batch_bytes = p.batch_copies = 0;
    }
    p.link->peer_state().unlock_producer();
}

net::Backend::SendResult CrossoverPort::to_peer(Peer& peer, std::span<const std::uint8_t> frame, Mode mode) {
    using R = net::Backend::SendResult;
    if (window_tx_unsettled(peer)) {
        if (mode != Mode::BestEffort) return R::Busy;
        ++c_.dropped_group_peer_full;
        peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
        return R::Dropped;
    }
    if (!open(peer)) {
        // A live producer (the peer's own slow path, another sender) is
        // mid-batch and descheduled, or stopped: a lossless frame waits and
        // we look again soon; a dead holder's lock was recovered by open().
        if (mode == Mode::Lossless) {
            ++c_.busy_peer_locked;
            retry_later(std::chrono::milliseconds(1));
            return R::Busy;
        }
        ++c_.dropped_peer_locked;
        peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
        return R::Dropped;
    }
    nic::SharedNicState& state = peer.link->peer_state();
    if (peer.begin == nic::RxView::Begin::NotReady) {
        if (mode == Mode::Group) {
            ++oc_.group_peer_not_ready;
            return R::Dropped;
        }
        if (mode == Mode::BestEffort) {
            ++c_.dropped_group_peer_full;
            return R::Dropped;
        }
        if (!begin_again(peer)) return R::Busy;
    }
    if (peer.begin == nic::RxView::Begin::Broken) {
        ++c_.dropped_bad_ring;
        warn_out_of_reach(peer);
        peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
        return R::Dropped;
    }
    if (!peer.rx_view->accepts(frame)) {
        // What the peer's NIC does with it: gone, whatever the mode (a
        // lossless link never waits for a filter to change).
        ++c_.dropped_filtered;
        peer.link->counters().filtered.fetch_add(1, std::memory_order_relaxed);
        return R::Dropped;
    }
    auto st = peer.rx_view->write(frame);
    if (st == nic::RxView::Status::Full) {
        if (mode == Mode::BestEffort) {
            ++c_.dropped_group_peer_full;
            peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
            return R::Dropped;
        }
        // Parking (tx_handoff.hpp) needs no doorbell: the peer moves the
        // frame itself when its guest returns buffers.
        const bool parkable = may_park(peer, frame, mode);
        ask_for_room(peer, !parkable);
        st = peer.rx_view->write(frame);
        if (st == nic::RxView::Status::Full && parkable) {
            if (start_run(peer)) {
                park(frame);
                return R::Deferred;
            }
            state.mark_producer_waiting();
            st = peer.rx_view->write(frame);
        }
        if (st == nic::RxView::Status::Full) {
            ++c_.busy_peer_full;
            return R::Busy;
        }
    }
    switch (st) {
    case nic::RxView::Status::Written:
        count_placed(peer, std::uint32_t(frame.size()), true);
        return R::Sent;
    case nic::RxView::Status::Oversize: ++c_.dropped_oversize; break;
    case nic::RxView::Status::Bad:
        if (mode == Mode::Lossless && awaiting_peer_window(peer)) return R::Busy;
        ++c_.dropped_bad_descriptor;
        warn_out_of_reach(peer);
        break;
    case nic::RxView::Status::Full: break;
    }
    peer.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
    return R::Dropped;
}

void CrossoverPort::end_batch() {
    drain_own_run();
    close_open();
    bool any = false;
    for (Peer& p : peers_) {
        if (p.wake_pending) {
            // Outside the peer's lock: a syscall (shared_nic_state.hpp).
            p.wake_pending = false;
            p.link->ring_peer_doorbell();
            ++c_.peer_irq_via_owner;
            any = true;
        }
        if (!p.irq_pending) continue;
        p.irq_pending = false;
        interrupt(p);
        any = true;
    }
    if (c_.batch_frames) {
        nic::OwnerCounters& own = page_.state().owner;
        own.tx_frames.fetch_add(c_.batch_frames, std::memory_order_relaxed);
        own.tx_bytes.fetch_add(c_.batch_bytes, std::memory_order_relaxed);
        c_.batch_frames = c_.batch_bytes = 0;
        any = true;
    }
    if (any) ++c_.batches;
}

// A peer with no RX route (e1000: its RX view already set ICR and checked
// IMS in finish()) gets its irqfd, its INTx line. With a route (virtio-net),
// the owner's route says whether the irqfd (its RX MSI-X vector) may be
// written, the owner must raise the interrupt itself (doorbell), or the
// vector is masked and the interrupt stays pending (peer_interrupt.hpp).
void CrossoverPort::interrupt(Peer& p) {
    PeerLink& link = *p.link;
    nic::PeerInterrupt* route = p.rx_view->rx_route(link.peer_state());
    if (!route) {
        link.interrupt_peer();
        ++c_.peer_interrupts;
        return;
    }
    auto outcome = route->raise(
        link.producer_slot, [&] { link.interrupt_peer(); }, [&] { link.ring_peer_doorbell(); });
    switch (outcome) {
    case nic::PeerInterrupt::Outcome::Signalled: ++c_.peer_interrupts; break;
    case nic::PeerInterrupt::Outcome::WokeOwner: ++c_.peer_irq_via_owner; break;
    case nic::PeerInterrupt::Outcome::LeftPending: ++c_.peer_irq_masked; break;
    case nic::PeerInterrupt::Outcome::Merged: ++c_.peer_irq_merged; break;
    }
}

// ------------------------------------------------------------------- RX

nic::NicPort::OwnRx CrossoverPort::rx_space_returned() {
    // The owner published RDT (or its ring) before this; see to_peer().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    OwnRx own = consume_parked();
    wake_waiting_producers();
    return own;
}

void CrossoverPort::wake_waiting_producers() {
    if (!complete_window_peer_tx()) {
        ++c_.window_completion_handoffs;
        window_peer_->link->ring_peer_doorbell();
        ++c_.doorbells_rung;
    }
    if (!page_.state().take_producer_waiting()) return;
    // We do not know which producer waited: wake every peer (rare: only
    // after a ring ran full and the frame could not be parked).
    for (Peer& p : peers_) {
        if (!p.link) continue;
        p.link->ring_peer_doorbell();
        ++c_.doorbells_rung;
    }
}

// Our TX slots a window peer's process completed (counted in our model's
// part of our page, which our TX view reads).
std::uint64_t CrossoverPort::window_completed_by_peer() const {
    return own_tx_view_->window_completed_by_peer(page_.state());
}

// A counter over every producer's slot in our page: what peers did to our
// RX ring, as the receiving side sees it. Slots count since our process
// started (a slot a new link takes goes on from there), so the sum covers
// every link we had.
std::uint64_t CrossoverPort::slot_sum(std::atomic<std::uint64_t> nic::ProducerSlot::*counter) const {
    std::uint64_t sum = 0;
    for (const nic::ProducerSlot& slot : page_.state().slots) sum += (slot.*counter).load(std::memory_order_relaxed);
    return sum;
}

// Frames in our RX ring that came over a link: those the producers'
// processes placed (copied, in place, or moved from their own handoff:
// their slots), and those our process moved out of their handoff.
nic::RxTally CrossoverPort::crossover_rx() const {
    return {slot_sum(&nic::ProducerSlot::frames) + c_.moved_in.frames,
            slot_sum(&nic::ProducerSlot::bytes) + c_.moved_in.bytes};
}

void CrossoverPort::append_counters(net::Counters& out) const {
    const nic::RxTally rx = crossover_rx();
    c_.append_to(out, {
        .links = table_.peers().size(),
        .rx_frames = rx.frames,
        .rx_bytes = rx.bytes,
        .rx_peer_filtered = slot_sum(&nic::ProducerSlot::filtered),
        .window_completed_by_peer = window_completed_by_peer(),
        .remaps = window_ ? window_->remaps() : 0,
        .handoff_moved_by_peer = handoff().moved_by_peer.load(std::memory_order_relaxed),
    });
    oc_.append_to(out);
}

std::vector<net::CounterInfo> CrossoverPort::counter_info() {
    std::vector<net::CounterInfo> out = Counters::info();
    for (auto& c : OrderCounters::info()) out.push_back(std::move(c));
    return out;
}

}  // namespace xover::crossover
