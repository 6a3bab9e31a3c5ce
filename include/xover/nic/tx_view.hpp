// A NIC model's TX view: completing transmit work in that NIC's TX ring
// from any process — the sender's own, or a crossover peer's that moved
// the frames (tx_handoff.hpp). It works on the sender's guest memory and
// its shared page only (the queue description in its TxHandoff, ICR/IMS in
// its state page), so it holds no state of the sender's process.
//
// One implementation per model, in that model's folder; the crossover
// engine picks one by the peer's model and never includes a model header.
//
// Tokens are the model's: e1000: EOP descriptor index | command << 16
// (DD is written when RS is set); virtio-net: the chain's head id (a used
// element of length 0).
//
// Window mode (zero copy) has a second way in: a sender's TX slots lent to
// its window peer, whose buffers are the peer's RX buffers, complete when
// the peer's guest gives those buffers back. Whoever is awake completes
// them, through this one call (complete_window), in place: the peer's
// process right after its guest returned buffers, the sender's in its own
// TX work. The record is in the sender's page, kept through the sender's
// own view (window_lend: a loan is known only where the frame is placed):
// the e1000's ledger (e1000/window_tx_ledger.hpp), virtio-net's loans
// (virtio_net/window_loans.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/nic/tx_handoff.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::nic {

// How the TX interrupt reaches the sender's guest after finish().
enum class TxIrq {
    None,    // nothing to signal (masked, suppressed, or nothing reported)
    Signal,  // write the sender's irqfd (its INTx line)
    Owner,   // only the sender's process may raise it (its moderation
             // timers, or an interrupt vector no peer holds): hand it over
    Routed,  // as the sender's TX interrupt route says (tx_route():
             // its TX irqfd, its doorbell, or left pending while masked)
};

class TxView {
public:
    virtual ~TxView() = default;
    // Reads the sender's TX queue description (the caller holds the
    // handoff lock). False: the description is unusable; complete nothing.
    virtual bool begin(vmm::GuestMemory& sender_memory, TxHandoff& handoff) = 0;
    // Completes one token (bounded: a token outside the ring is ignored).
    virtual void complete(std::uint32_t token) = 0;
    // The generation of the description begin() read: a parked token of
    // another one (a ring the guest has reset or moved since) is not
    // completed (tx_handoff.hpp).
    std::uint32_t ring_generation() const { return ring_generation_; }
    // Publishes the completions; true when the sender's guest wants a TX
    // interrupt for them (RS with DD written; virtio: its event index).
    virtual bool finish() = 0;
    // From a process other than the sender's: raises the TX cause in the
    // sender's state page as its registers allow and says how to signal.
    virtual TxIrq signal_remote(SharedNicState& sender_state) = 0;
    // With TxIrq::Routed: the sender's TX interrupt route in its page.
    virtual PeerInterrupt* tx_route(SharedNicState& /*sender_state*/) { return nullptr; }

    // --- window mode: completing lent slots, from either process ---
    struct WindowCompletion {
        std::uint32_t completed = 0;  // lent slots completed: the sender's guest may reuse them
        std::uint32_t reported = 0;   // of those, reported to its guest: raise its TX cause
        bool all_delayed = true;      // every reported one asked for a delayed interrupt (e1000:
                                      // IDE), which the sender may raise through its delay timers
        bool busy = false;            // another completer holds the record now (it completes them)
        bool unreachable = false;     // some were left: a descriptor or ring is out of reach
    };
    // Who calls complete_window: the process that owns the sender's NIC, or
    // its window peer's (the receiver's).
    enum class Completer { Sender, Receiver };
    // Whether the sender lent TX slots over window link `link` that the
    // receiver's process may complete. Cheap and lock-free: asked on every
    // RX buffer return. Default (a model without a record): nothing lent.
    virtual bool window_lent(const SharedNicState& /*sender_state*/, std::uint64_t /*link*/) const { return false; }
    // Completes the lent slots whose buffers the receiver's guest gave
    // back (e1000: RX descriptors [RDT, RDH) of a ring as large as the
    // sender's are still its guest's; virtio-net: heads made available
    // again); with no receiver (the link is gone), every lent slot. The
    // caller holds the receiver's producer lock (the sender holds that
    // lock for a whole batch, so the walk sees the lent range and the
    // receiver's ring from the same side of a batch). Then, if anything
    // was reported: the receiver asks signal_remote() how TX reaches the
    // sender's guest; the sender raises it as its model does (the view
    // has applied the guest's suppression: e1000 RS, virtio event index).
    // With slots still out, the view asks the receiver's side to tell the
    // sender at its guest's next buffer return, where only the sender may
    // complete them (e1000: TXDW needs the sender's timers, and the
    // receiver's next RDT write rings its doorbell; virtio-net: the
    // receiver's guest must notify), and looks once more for a return
    // made before it asked.
    // A Receiver gives up at once on a busy record (it rings the sender's
    // doorbell instead) and counts what it did in the sender's page
    // (window_completed_by_peer).
    virtual WindowCompletion complete_window(Completer /*who*/, vmm::GuestMemory& /*sender_memory*/,
                                             SharedNicState& /*sender_state*/, vmm::GuestMemory* /*receiver_memory*/,
                                             SharedNicState* /*receiver_state*/) {
        return {};
    }

    // --- window mode, the sender's record, kept by the engine in the
    // sender's process; `own` is the sender's page. The defaults record
    // nothing.
    // The frame of TX token `token` now sits in the receiver's RX buffer of
    // the same number, placed over window link `link`; the receiver's ring
    // was consumed up to `position`. The caller holds the receiver's
    // producer lock. False: not recorded (a token outside the TX ring the
    // model published; models never lend one).
    virtual bool window_lend(SharedNicState& /*own*/, std::uint64_t /*link*/, std::uint32_t /*token*/,
                             std::uint32_t /*position*/, vmm::GuestMemory& /*receiver_memory*/,
                             const SharedNicState& /*receiver*/) {
        return false;
    }
    // How many lent slots the receiver's process completed (counted in
    // the sender's page since its process started).
    virtual std::uint64_t window_completed_by_peer(const SharedNicState& /*own*/) const { return 0; }
    // Whether `token` is lent or back and not completed yet; whether any is.
    virtual bool window_holds(const SharedNicState& /*own*/, std::uint32_t /*token*/) const { return false; }
    virtual bool window_any(const SharedNicState& /*own*/) const { return false; }
    // Forgets every loan (the sender's TX queue was reset or moved).
    virtual void window_forget(SharedNicState& /*own*/) {}
    // Holding our handoff lock, at `completion_pos`: settles what a peer's
    // completer killed mid-batch left taken (before anything moves the
    // position on).
    virtual void window_recover(SharedNicState& /*own*/, std::uint32_t /*completion_pos*/) {}

protected:
    std::uint32_t ring_generation_ = 0;  // set by begin()
};

}  // namespace xover::nic

// Each model's factory (defined in its own library).
namespace xover::e1000 {
std::unique_ptr<nic::TxView> make_tx_view();
}
namespace xover::virtio_net {
std::unique_ptr<nic::TxView> make_tx_view();
}
