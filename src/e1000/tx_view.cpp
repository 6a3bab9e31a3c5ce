// The e1000's TX view (nic/tx_view.hpp): a token is the EOP descriptor of
// a frame someone else moved; completing it writes DD when the driver
// asked for a report (RS), as the NIC's write-back would. Window slots lent
// to the receiver complete by the sender's ledger (window_tx_ledger.hpp).
// From another process TXDW is raised at once for the batch (not after
// TIDV/TADV: the batch is the coalescing), and no sooner than the owner's
// ITR interval after its last edge; within it, the owner raises it with
// its timers.
#include <time.h>

#include <atomic>

#include "xover/e1000/registers.hpp"
#include "xover/e1000/window_tx_ledger.hpp"
#include "xover/nic/tx_view.hpp"

namespace xover::e1000 {

namespace {

// Adds one walk of the ledger to what a completion reports.
void add(nic::TxView::WindowCompletion& done, const window_tx::WalkResult& walked) {
    done.completed += walked.completed;
    done.reported += walked.reported;
    done.all_delayed = done.all_delayed && walked.all_delayed;
    done.unreachable = done.unreachable || walked.unreachable;
}

class E1000TxView final : public nic::TxView {
public:
    bool begin(vmm::GuestMemory& memory, nic::TxHandoff& handoff) override {
        memory_ = &memory;
        reported_ = 0;
        nic::TxQueueDescription q;
        if (!nic::read_tx_queue(handoff.queue, q) || q.kind != nic::TxQueueKind::E1000Legacy) return false;
        ring_generation_ = q.generation;
        entries_ = q.entries;
        base_ = q.ring_gpa;
        throttled_ = q.flags & nic::kTxIrqThrottled;
        interval_ns_ = q.irq_interval_ns;
        handoff_ = &handoff;
        // The whole ring within reach, or no completion at all: a
        // completion skipped for want of its descriptor would hang the
        // sender's guest (the caller leaves the frames to the sender).
        return entries_ != 0 && !memory.span(base_, std::uint64_t(entries_) * kDescriptorSize).empty();
    }

    void complete(std::uint32_t token) override {
        std::uint32_t index = token & 0xFFFF;
        std::uint8_t cmd = std::uint8_t(token >> 16);
        if (!(cmd & txd::CMD_RS) || index >= entries_) return;
        auto d = memory_->span(base_ + std::uint64_t(index) * kDescriptorSize, kDescriptorSize);
        if (d.empty()) return;
        // The frame was read (it is in the receiver's ring now) before the
        // sender's guest may see DD and reuse the buffer.
        std::atomic_ref<std::uint8_t> status(d[12]);
        status.fetch_or(txd::STA_DD, std::memory_order_release);
        ++reported_;
    }

    bool finish() override { return reported_ != 0; }

    nic::TxIrq signal_remote(nic::SharedNicState& sender) override {
        std::uint64_t now = 0;
        if (throttled_) {
            timespec ts{};
            ::clock_gettime(CLOCK_MONOTONIC, &ts);
            now = std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
            if (now < handoff_->last_irq_ns.load(std::memory_order_relaxed) + interval_ns_)
                return nic::TxIrq::Owner;  // within ITR: the owner's timer delivers it
        }
        if (!sender.raise(icr::TXDW)) return nic::TxIrq::None;
        if (throttled_) handoff_->last_irq_ns.store(now, std::memory_order_relaxed);
        return nic::TxIrq::Signal;
    }

    // Not ours to do while the sender's TXDW needs its timers: it asked
    // for a doorbell instead (producer_waiting).
    bool window_lent(const nic::SharedNicState& sender, std::uint64_t link) const override {
        const nic::WindowTxLedger& ledger = sender.e1000.window_tx;
        if (!window_tx::lent(ledger).any()) return false;
        return ledger.peer_may_complete.load(std::memory_order_acquire) &&
               ledger.link.load(std::memory_order_relaxed) == link;
    }

    // The ledger's lock: a receiver only tries (on failure it rings our
    // doorbell, and we walk with its newer RDT); the sender spins briefly,
    // which also recovers a lock a dead walker left (owned_lock.hpp).
    WindowCompletion complete_window(Completer who, vmm::GuestMemory& sender_memory, nic::SharedNicState& sender,
                                     vmm::GuestMemory* /*receiver_memory*/,
                                     nic::SharedNicState* receiver) override {
        nic::WindowTxLedger& ledger = sender.e1000.window_tx;
        bool locked = who == Completer::Receiver ? window_tx::try_lock(ledger) : window_tx::lock(ledger);
        if (!locked) return {.busy = true};  // a live walker is completing them now
        WindowCompletion done;
        auto walk_returned = [&] {
            add(done, window_tx::walk(ledger, sender_memory, receiver->load_rdt(), receiver->load_rdh(), false));
        };
        if (!receiver) {
            add(done, window_tx::walk(ledger, sender_memory, 0, 0, true));
        } else {
            walk_returned();
            // Slots still out while TXDW needs the sender's timers (the
            // receiver does not complete them, peer_may_complete): the
            // receiver's next RDT write must ring the sender's doorbell
            // (it publishes RDT, then takes the flag); then one more walk
            // for a write made before the flag.
            if (who == Completer::Sender && window_tx::lent(ledger).any() &&
                !ledger.peer_may_complete.load(std::memory_order_relaxed)) {
                receiver->mark_producer_waiting();
                walk_returned();
            }
        }
        window_tx::unlock(ledger);
        if (who == Completer::Receiver) {
            if (done.completed) ledger.completed_by_peer.fetch_add(done.completed, std::memory_order_relaxed);
            // The ledger's rule for TXDW (peer_may_complete), not the handoff's.
            throttled_ = false;
        }
        return done;
    }

    // The sender's TX ring as its model published it (every ring register
    // write publishes): the ledger's walk reads descriptors there.
    bool window_lend(nic::SharedNicState& own, std::uint64_t link, std::uint32_t token, std::uint32_t /*position*/,
                     vmm::GuestMemory&, const nic::SharedNicState&) override {
        nic::TxQueueDescription q;
        if (!nic::read_tx_queue(nic::tx_handoff(own).queue, q) || q.kind != nic::TxQueueKind::E1000Legacy ||
            token >= q.entries)
            return false;
        window_tx::lend(own.e1000.window_tx, token, q.entries, q.ring_gpa, link);
        return true;
    }

    bool window_any(const nic::SharedNicState& own) const override {
        return window_tx::lent(own.e1000.window_tx).any();
    }

    // Under the walkers' lock, unless a live walker keeps it past a short
    // spin (it then finds nothing lent, or slots of the ring the guest is
    // replacing).
    void window_forget(nic::SharedNicState& own) override {
        nic::WindowTxLedger& ledger = own.e1000.window_tx;
        bool locked = window_tx::lock(ledger);
        window_tx::forget(ledger);
        if (locked) window_tx::unlock(ledger);
    }

    std::uint64_t window_completed_by_peer(const nic::SharedNicState& own) const override {
        return own.e1000.window_tx.completed_by_peer.load(std::memory_order_relaxed);
    }

private:
    vmm::GuestMemory* memory_ = nullptr;
    std::uint64_t base_ = 0;
    std::uint32_t entries_ = 0;
    std::uint32_t reported_ = 0;
    nic::TxHandoff* handoff_ = nullptr;
    std::uint32_t interval_ns_ = 0;
    bool throttled_ = false;
};

}  // namespace

std::unique_ptr<nic::TxView> make_tx_view() { return std::make_unique<E1000TxView>(); }

}  // namespace xover::e1000
