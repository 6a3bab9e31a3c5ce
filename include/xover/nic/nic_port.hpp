// The seam between a NIC model and the crossover engine. A model with a
// crossover configuration gets a NicPort (see attach_crossover() in the
// e1000 and virtio-net models); the model stays ignorant of links, peers
// and the broker, and the crossover library implements the port
// (CrossoverPort). It lives in the nic layer, below both: device models
// include no crossover header and link no crossover library (the engine
// depends on them, not the other way round; scripts/check-layers.sh).
//
// Threads: every call is made with the NIC's device lock held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "xover/net/backend.hpp"
#include "xover/nic/shared_nic_state.hpp"
#include "xover/nic/tx_handoff.hpp"
#include "xover/nic/tx_view.hpp"

namespace xover::nic {

// Frames placed in a NIC's RX ring, and their bytes (what the guest gets:
// no FCS, no virtio_net_hdr).
struct RxTally {
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;
};

class NicPort {
public:
    virtual ~NicPort() = default;

    // This NIC's own shared state page (RDH/ICR/IMS/RX ring description).
    virtual SharedNicState& shared() = 0;

    // Transmit: the model's single frame sink. Routes the frame to a peer
    // (copied into its RX ring), to every peer and the backend (group), or
    // to the backend. Busy: nothing was taken, keep the frame pending; the
    // model's resume_tx() is called when it can go (doorbell or backend).
    virtual net::Backend::SendResult send(std::span<const std::uint8_t> frame) = 0;
    // End of a transmit batch (TDT write, queue notify, resume): publishes
    // the peers' RX positions and interrupts each peer at most once.
    // Idempotent; the model calls it before dropping its lock.
    virtual void end_batch() = 0;

    // send() for a frame the model completes itself (e1000: its EOP
    // descriptor; virtio-net: its chain) with `token` (nic/tx_view.hpp).
    // When the peer's ring is full the port may park the frame in this
    // NIC's TX handoff (Deferred): the model must then NOT complete it;
    // whoever moves the frame later completes `token` through this
    // model's TX view, in this process or the peer's.
    virtual net::Backend::SendResult send_completable(std::span<const std::uint8_t> frame,
                                                      std::uint32_t /*token*/) {
        return send(frame);
    }
    // The model's TX ring as a TX view needs it (publish on every change:
    // ring registers, queue enable, reset, moderation settings).
    virtual void publish_tx_queue(TxQueueKind /*kind*/, std::uint32_t /*entries*/, std::uint64_t /*ring*/,
                                  std::uint64_t /*avail*/, std::uint64_t /*used*/, std::uint32_t /*flags*/,
                                  std::uint32_t /*irq_interval_ns*/ = 0) {}
    // The model raised its interrupt line at CLOCK_MONOTONIC `now_ns`, and
    // when anyone last did (a peer moving our parked frames raises TXDW
    // too): interrupt throttling spans both.
    virtual void note_interrupt(std::uint64_t /*now_ns*/) {}
    virtual std::uint64_t last_interrupt_ns() const { return 0; }
    // At the start of every TX walk. True: a handoff run just ended (every
    // parked frame was moved and completed); virtio-net continues its used
    // ring at `completion_pos`. While a run is active (false, and
    // tx_parking() true) the model completes nothing itself.
    virtual bool reclaim_tx(std::uint32_t& /*completion_pos*/) { return false; }
    virtual bool tx_parking() const { return false; }
    // virtio-net, no run active: the TX used index after the model's own
    // completions (a run starts from it).
    virtual void set_tx_completion_pos(std::uint32_t /*used*/) {}
    // virtio-net during a run: a chain the model drops (malformed) is
    // completed in the run's order. False: the handoff is full, retry later.
    virtual bool park_completion(std::uint32_t /*token*/) { return false; }
    // The guest reset or replaced its TX ring: parked frames are gone
    // (their descriptors are no longer the guest's), the run ends.
    virtual void abandon_tx() {}
    // A TX interrupt someone moved frames for and only this model may raise
    // (its moderation timers or vector). Called after end_batch() and on
    // the doorbell; true: raise it now.
    virtual bool take_tx_interrupt() { return false; }

    // What the owner's model must do for frames its own process just
    // placed in its own RX ring (moving a peer's parked frames).
    enum class OwnRx {
        None,
        Interrupt,  // the RX cause is set / the ring wants an interrupt: raise it
        Moderated,  // e1000: RXT0 through the model's delay timers
    };
    // The owner's guest returned RX buffers (RDT write, RX queue notify)
    // or (re)configured its RX ring: moves frames peers parked for us
    // (tx_handoff.hpp) and wakes producers that found the ring full.
    virtual OwnRx rx_space_returned() = 0;
    // Something waits for a lock a process of a peer holds (the model's
    // deliver() left the backend's frame with the backend, an RX change was
    // posted, TX completions were put off): call the model's resume_tx()
    // and retry_rx() (on the I/O thread) after `delay`.
    virtual void retry_later(std::chrono::milliseconds /*delay*/) {}

    // Link state the model reports to its guest: the backend's, or, for a
    // crossover-only NIC (backend none), whether any link is up.
    virtual bool carrier() const = 0;

    // key=value counters for --stats.
    virtual void append_counters(net::Counters& out) const = 0;
    // What crossover peers delivered into this NIC's RX ring: placed by
    // their processes, or moved out of their TX handoff by ours. The
    // model's rx_frames/rx_bytes include it (received()).
    virtual RxTally crossover_rx() const { return {}; }

    // --- window mode (zero copy); the defaults say "no window" ---
    enum class WindowSend {
        NotApplicable,  // not a window frame: take the normal (copy) path
        Placed,         // now in the peer's RX ring, in place: do not complete it yet
        Busy,           // the peer's ring is full: stop here, resume_tx() comes later
    };
    // The frame of TX slot `tx_index` (e1000: descriptor index; virtio:
    // chain head) if its one buffer, at guest-physical `buffer_gpa`, lies at
    // this NIC's TX-half offset tx_index*2048 and the peer's RX slot
    // tx_index points at the same memory: hands it over without copying.
    // The buffer holds `frame_offset` bytes of model header (e1000 0,
    // virtio-net 12: virtio_net_hdr) and then `frame`; a peer whose model
    // lays its buffers out otherwise gets the frame copied.
    virtual WindowSend send_in_window(std::uint32_t /*tx_index*/, std::uint64_t /*buffer_gpa*/,
                                      std::uint32_t /*frame_offset*/, std::span<const std::uint8_t> /*frame*/) {
        return WindowSend::NotApplicable;
    }
    // Whether guest memory [gpa, gpa + length) is one of our RX buffers the
    // window peer's TX slots share (our RX half while a window link is
    // up): only that peer's frames may land there. Another frame written
    // there would overwrite a frame the peer's guest is still sending.
    virtual bool shared_with_window_peer(std::uint64_t /*gpa*/, std::uint64_t /*length*/) const { return false; }
    // The window link our in-place TX slots go over (0: none).
    virtual std::uint64_t window_link_id() const { return 0; }
    // Completes our TX slots placed by send_in_window whose buffers the
    // window peer's guest has given back (every lent one once there is no
    // window peer), in place, through our model's TX view: the e1000's DD
    // bits, virtio-net's used elements. The model then raises its TX
    // interrupt when `reported` (the view applied the guest's suppression).
    // The peer's process does the same right after its guest returns
    // buffers, so in steady state this finds the work done. While slots
    // stay out that only we may complete, the view asks the peer to tell
    // us at its guest's next return. When another completer held the
    // record, retry_later() is due.
    virtual TxView::WindowCompletion complete_window_tx() { return {}; }
    // Whether TX head `head` is still lent (not completed yet).
    virtual bool window_holds(std::uint16_t /*head*/) const { return false; }
    // Forgets every lent slot: the model's TX queue was reset or moved.
    virtual void window_forget() {}
    // Virtio-net: who may write our TX used ring now.
    enum class TxCompletion {
        Own,     // only we: complete as usual
        Shared,  // window completions too (complete_window_tx, and the
                 // window peer's process): we hold the writers' lock,
                 // `used` is the index to continue at; add the elements
                 // there and hand the new index to end_tx_completion()
        Busy,    // a live peer holds that lock now: keep the heads and
                 // complete them from resume_tx() (retry_later is due)
    };
    virtual TxCompletion begin_tx_completion(std::uint32_t& /*used*/) { return TxCompletion::Own; }
    virtual void end_tx_completion(std::uint32_t /*used*/) {}
};

// A model's rx_frames/rx_bytes: what its backend delivered, plus what
// crossover peers did when it has a port (the port's xover_rx_*).
inline RxTally received(const RxTally& from_backend, const NicPort* port) {
    RxTally peers = port ? port->crossover_rx() : RxTally{};
    return {from_backend.frames + peers.frames, from_backend.bytes + peers.bytes};
}

// One short spin (no yield), recovering the lock from a holder that died:
// for a caller that has another way to get the work done while a live
// holder is in the middle of a batch. Nobody waits longer for it.
inline bool try_lock_producer_briefly(SharedNicState& state) { return state.try_lock_producer_briefly(); }

// RAII holder for the owner's own producer-side work (its backend's
// deliver()): one short spin only. The work can wait: a backend's frame
// stays with the backend, and the caller retries later.
class ProducerLock {
public:
    explicit ProducerLock(SharedNicState* state) : state_(state) {
        if (state_ && !try_lock_producer_briefly(*state_)) state_ = nullptr, failed_ = true;
    }
    ~ProducerLock() {
        if (state_) state_->unlock_producer();
    }
    ProducerLock(const ProducerLock&) = delete;
    ProducerLock& operator=(const ProducerLock&) = delete;
    // True when a page was given and its lock could not be taken.
    bool failed() const { return failed_; }

private:
    SharedNicState* state_;
    bool failed_ = false;
};

// A model's RX changes (nic/rx_change.hpp), made through its port: each is
// applied now, or posted for the producer lock's holder with the model's
// retry_rx() due in a millisecond. A ring or "enabled" equal to the one
// made last is left out (a guest's RCTL write that changes only filter
// bits changes no ring, and producers' batches go on undisturbed); a
// position always goes out (producers move it). One per model, under its
// device lock; forget() when the port's page is new.
class OwnerRxChanges {
public:
    void make(NicPort& port, RxChange change) {
        if (change.ring && last_ring_ == change.ring) change.ring.reset();
        if (change.enabled && last_enabled_ == change.enabled) change.enabled.reset();
        if (!change.ring && !change.rdh && !change.enabled) return;
        if (change.ring) last_ring_ = change.ring;
        if (change.enabled) last_enabled_ = change.enabled;
        if (port.shared().change_rx(change)) return;
        posted_ = true;
        port.retry_later(std::chrono::milliseconds(1));
    }
    enum class Settle {
        Nothing,    // nothing was posted
        Settled,    // what was posted is applied now: wake producers that found the old ring unusable
        StillHeld,  // a live producer still holds the lock: another retry is due
    };
    // From the model's retry_rx().
    Settle settle(NicPort& port) {
        if (!posted_) return Settle::Nothing;
        if (!port.shared().settle_rx_change()) {
            port.retry_later(std::chrono::milliseconds(1));
            return Settle::StillHeld;
        }
        posted_ = false;
        return Settle::Settled;
    }
    void forget() { *this = {}; }

private:
    bool posted_ = false;
    std::optional<RxRing> last_ring_;
    std::optional<bool> last_enabled_;
};

}  // namespace xover::nic
