// The virtio-net TX view (nic/tx_view.hpp): a token is the head of a TX
// chain someone else moved; completing it adds a used element of length 0
// at the shared used position (TxHandoff::completion_pos), with the same
// Virtqueue code the device uses. The TX interrupt follows the guest's
// event index / NO_INTERRUPT; its vector is the owner's to signal.
#include "xover/nic/tx_view.hpp"
#include "xover/virtio_net/virtqueue.hpp"

namespace xover::virtio_net {

namespace {

class VirtioTxView final : public nic::TxView {
public:
    bool begin(vmm::GuestMemory& memory, nic::TxHandoff& handoff) override {
        handoff_ = &handoff;
        added_ = false;
        const nic::TxQueue& q = handoff.queue;
        if (q.kind.load(std::memory_order_relaxed) != std::uint32_t(nic::TxQueueKind::VirtioSplit)) return false;
        std::uint32_t entries = q.entries.load(std::memory_order_relaxed);
        if (entries == 0 || entries > Virtqueue::kMaxSize) return false;
        VirtqueueLayout layout;
        layout.size = std::uint16_t(entries);
        layout.desc = q.ring_gpa.load(std::memory_order_relaxed);
        layout.avail = q.avail_gpa.load(std::memory_order_relaxed);
        layout.used = q.used_gpa.load(std::memory_order_relaxed);
        bool event_idx = q.flags.load(std::memory_order_relaxed) & nic::kTxEventIdx;
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
        queue_.publish_used();
        handoff_->completion_pos.store(queue_.used_index(), std::memory_order_relaxed);
        bool interrupt = queue_.should_interrupt();
        queue_.disable();
        return interrupt;
    }

    nic::TxIrq signal_remote(nic::SharedNicState&) override { return nic::TxIrq::Owner; }

private:
    nic::TxHandoff* handoff_ = nullptr;
    Virtqueue queue_;
    bool added_ = false;
};

}  // namespace

std::unique_ptr<nic::TxView> make_tx_view() { return std::make_unique<VirtioTxView>(); }

}  // namespace xover::virtio_net
