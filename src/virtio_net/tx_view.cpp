// The virtio-net TX view (nic/tx_view.hpp): a token is the head of a TX
// chain someone else moved; completing it adds a used element of length 0
// at the shared used position (TxHandoff::completion_pos), with the same
// Virtqueue code the device uses. The TX interrupt follows the guest's
// event index / NO_INTERRUPT; its vector is the owner's to signal.
//
// Window mode: the loans (window_loans.hpp) are recorded through this view
// in the sender's process and completed through it in either process.
#include "xover/nic/tx_view.hpp"
#include "xover/virtio_net/virtqueue.hpp"
#include "xover/virtio_net/window_loans.hpp"

namespace xover::virtio_net {

namespace {

class VirtioTxView final : public nic::TxView {
public:
    bool begin(vmm::GuestMemory& memory, nic::TxHandoff& handoff) override {
        handoff_ = &handoff;
        added_ = false;
        nic::TxQueueDescription q;
        if (!nic::read_tx_queue(handoff.queue, q) || q.kind != nic::TxQueueKind::VirtioSplit) return false;
        if (q.entries == 0 || q.entries > Virtqueue::kMaxSize) return false;
        ring_generation_ = q.generation;
        VirtqueueLayout layout;
        layout.size = std::uint16_t(q.entries);
        layout.desc = q.ring_gpa;
        layout.avail = q.avail_gpa;
        layout.used = q.used_gpa;
        bool event_idx = q.flags & nic::kTxEventIdx;
        if (!queue_.enable(memory, layout, event_idx, false)) return false;
        queue_.continue_used_at(std::uint16_t(handoff.completion_pos.load(std::memory_order_relaxed)));
        return true;
    }

    void complete(std::uint32_t token) override {
        if (token >= queue_.layout().size) return;  // not a head of this ring
        queue_.add_used(std::uint16_t(token), 0);
        added_ = true;
    }

    bool finish() override {
        if (!added_) {
            queue_.disable();
            return false;
        }
        // The position first: a completer killed between the two has
        // written these used elements, and recover_taken() must then call
        // its heads published (the next completion publishes the index
        // over them); the other order would let the guest see them, and
        // have them completed again.
        handoff_->completion_pos.store(queue_.used_index(), std::memory_order_relaxed);
        queue_.publish_used();
        bool interrupt = queue_.should_interrupt();
        queue_.disable();
        return interrupt;
    }

    // The owner publishes its TX queue's route (peer_tx_irq): its TX
    // vector's irqfd while that is deliverable, its doorbell otherwise.
    nic::TxIrq signal_remote(nic::SharedNicState&) override { return nic::TxIrq::Routed; }
    nic::PeerInterrupt* tx_route(nic::SharedNicState& sender) override { return &sender.virtio_net.peer_tx_irq; }

    // --- window mode ---
    bool window_lent(const nic::SharedNicState& sender, std::uint64_t link) const override {
        auto& ledger = const_cast<nic::SharedNicState&>(sender).virtio_net.window_loans;
        WindowLoans loans(ledger);
        return loans.link() == link && loans.any();
    }

    // Holding the receiver's producer lock (when there is a receiver). The
    // sender's TX used ring has one writer at a time: whoever holds its
    // handoff lock, at TxHandoff::completion_pos (the sender takes the
    // same lock for its own completions while it lends, nic_port.hpp:
    // begin_tx_completion, and adopts that position).
    WindowCompletion complete_window(Completer who, vmm::GuestMemory& sender_memory, nic::SharedNicState& sender,
                                     vmm::GuestMemory* receiver_memory, nic::SharedNicState* receiver) override {
        nic::TxHandoff& h = nic::tx_handoff(sender);
        if (!h.try_lock_briefly()) return {.busy = true};  // another completer is at it
        WindowLoans loans(sender.virtio_net.window_loans);
        loans.recover_taken(h.completion_pos.load(std::memory_order_relaxed));  // a completer killed mid-batch
        bool gone = !receiver_memory || !receiver;
        if (gone)
            loans.give_back_all();
        // A receiver whose ring went away leaves the loans to the sender.
        else if (loans.look(*receiver_memory, *receiver) == WindowLoans::Look::Gone && who == Completer::Receiver) {
            h.unlock();
            return {.unreachable = true};
        }
        if (!begin(sender_memory, h)) {
            h.unlock();
            return {.unreachable = true};
        }
        WindowCompletion done;
        std::uint16_t heads[64];
        for (int pass = 0; pass < 2; ++pass) {
            std::size_t n;
            do {
                n = loans.take_back_taken(heads);
                for (std::size_t i = 0; i < n; ++i) complete(heads[i]);
                done.completed += std::uint32_t(n);
            } while (n == std::size(heads));
            // Heads still out: the receiver's guest must notify at its
            // next return (an arm is used up by the return it announced,
            // and the sender may be waiting without an exit); then one
            // more look for a return made before the arm.
            if (pass == 1 || gone || !loans.any()) break;
            loans.arm(*receiver_memory, *receiver);
            loans.look(*receiver_memory, *receiver);
        }
        loans.will_publish_at(queue_.used_index());
        bool interrupt = finish();
        loans.settle_taken();
        h.unlock();
        if (done.completed && who == Completer::Receiver)
            sender.virtio_net.window_loans.completed_by_peer.fetch_add(done.completed, std::memory_order_relaxed);
        done.reported = interrupt ? done.completed : 0;
        done.all_delayed = false;  // virtio-net has no delayed TX interrupt
        return done;
    }

    bool window_lend(nic::SharedNicState& own, std::uint64_t link, std::uint32_t token, std::uint32_t position,
                     vmm::GuestMemory& receiver_memory, const nic::SharedNicState& receiver) override {
        if (token >= WindowLoans::kMaxHeads) return false;
        return WindowLoans(own.virtio_net.window_loans)
            .lend(link, std::uint16_t(token), std::uint16_t(position), receiver_memory, receiver);
    }

    void window_recover(nic::SharedNicState& own, std::uint32_t completion_pos) override {
        WindowLoans(own.virtio_net.window_loans).recover_taken(completion_pos);
    }

    bool window_holds(const nic::SharedNicState& own, std::uint32_t token) const override {
        auto& ledger = const_cast<nic::SharedNicState&>(own).virtio_net.window_loans;
        return token < WindowLoans::kMaxHeads && WindowLoans(ledger).holds(std::uint16_t(token));
    }
    std::uint64_t window_completed_by_peer(const nic::SharedNicState& own) const override {
        return own.virtio_net.window_loans.completed_by_peer.load(std::memory_order_relaxed);
    }
    bool window_any(const nic::SharedNicState& own) const override {
        return WindowLoans(const_cast<nic::SharedNicState&>(own).virtio_net.window_loans).any();
    }

    // Under our handoff lock: a receiver completing loans holds it.
    void window_forget(nic::SharedNicState& own) override {
        nic::TxHandoff& h = nic::tx_handoff(own);
        bool locked = h.try_lock_briefly();
        WindowLoans(own.virtio_net.window_loans).forget();
        if (locked) h.unlock();
    }

private:
    nic::TxHandoff* handoff_ = nullptr;
    Virtqueue queue_;
    bool added_ = false;
};

}  // namespace

std::unique_ptr<nic::TxView> make_tx_view() { return std::make_unique<VirtioTxView>(); }

}  // namespace xover::virtio_net
