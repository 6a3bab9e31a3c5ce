// The e1000's RX view (nic/rx_view.hpp): legacy receive descriptors from
// RDH up to RDT (both in the receiver's shared page), the frame copied into
// as many buffers as it needs, length and DD|EOP written back, RDH advanced.
// The receiver's filter applies as in its own receive path (the same
// rx_filter::check(), over the registers the owner publishes in its shared
// page): the sender chose this receiver by the MAC the broker knows, but
// the guest may since have changed its address, cleared BAM, or left a
// multicast group out of its MTA. What the guest gets is what its NIC
// would write (rx_delivery.hpp): VLAN tags stripped under CTRL.VME,
// checksums checked under RXCSUM, the FCS unless SECRC. RXT0 is raised
// here, or handed to the owner when it moderates interrupts
// (nic/shared_nic_state.hpp).
#include <atomic>
#include <cstring>

#include "xover/e1000/registers.hpp"
#include "xover/e1000/rx_delivery.hpp"
#include "xover/e1000/rx_filter.hpp"
#include "xover/nic/rx_view.hpp"

namespace xover::e1000 {

namespace {

class E1000RxView final : public nic::RxView {
public:
    Begin begin(vmm::GuestMemory& memory, nic::SharedNicState& state) override {
        memory_ = &memory;
        state_ = &state;
        wrote_ = false;
        nic::SharedNicState::RxRing ring;
        if (!state.read_rx_ring(ring)) return Begin::NotReady;  // owner mid-update
        if (!(state.link_flags.load(std::memory_order_acquire) & nic::kOwnerRxEnabled)) return Begin::NotReady;
        if (ring.kind != nic::RxRingKind::E1000Legacy || ring.ring_entries < 2 || ring.buffer_size == 0)
            return Begin::NotReady;
        base_ = ring.ring_gpa;
        entries_ = ring.ring_entries;
        buffer_size_ = ring.buffer_size;
        fcs_ = !(ring.features & nic::kRxStripCrc);
        head_ = state.load_rdh();
        if (head_ >= entries_) return Begin::Broken;
        filter_ = state.link_flags.load(std::memory_order_acquire) & nic::kOwnerRxFilter;
        return Begin::Ready;
    }

    bool accepts(std::span<const std::uint8_t> frame) const override {
        if (!filter_) return true;  // an owner that publishes no filter
        const nic::SharedNicState& s = *state_;
        auto read = [&s](std::uint32_t offset) { return s.e1000.filter_word(rx_filter::word_index(offset)); };
        return rx_filter::check(frame, read) == rx_filter::Verdict::Accept;
    }

    Status write(std::span<const std::uint8_t> frame) override {
        std::uint32_t tail = state_->load_rdt();  // acquire: descriptors it covers are the guest's
        if (tail >= entries_) return Status::Bad;
        if (frame.size() > rx_delivery::kMaxFrame) return Status::Oversize;
        rx_delivery::Delivery delivery(frame, registers());
        std::size_t total = delivery.size();
        std::uint32_t needed = std::uint32_t((total + buffer_size_ - 1) / buffer_size_);
        if (needed > entries_ - 1) return Status::Oversize;
        std::uint32_t free = (tail + entries_ - head_) % entries_;
        if (free < needed) return Status::Full;

        if (needed > rx_delivery::kMaxDescriptors) return Status::Oversize;
        rx_delivery::Targets targets;
        if (rx_delivery::resolve(*memory_, base_, entries_, head_, needed, total, buffer_size_, targets) !=
            needed)
            return Status::Bad;
        delivery.write(targets);
        advance(needed);
        return Status::Written;
    }

    // Window mode: the sender's TX buffer is this descriptor's buffer
    // (one shared element behind both); only the descriptor is written.
    Status place(std::uint32_t index, std::uint64_t buffer_gpa, std::uint32_t length) override {
        std::uint32_t tail = state_->load_rdt();
        if (tail >= entries_) return Status::Bad;
        if (fcs_ || head_ != index || length > buffer_size_) return Status::Bad;  // copy path instead
        if ((tail + entries_ - head_) % entries_ == 0) return Status::Full;
        auto d = memory_->span(base_ + std::uint64_t(head_) * kDescriptorSize, kDescriptorSize);
        if (d.empty()) return Status::Bad;
        std::uint64_t address;
        std::memcpy(&address, d.data(), 8);
        if (address != buffer_gpa) return Status::Bad;
        auto frame = memory_->span(buffer_gpa, length);
        if (frame.empty()) return Status::Bad;
        // What the NIC would write for it: with no tag to strip (see
        // in_place()) and no FCS, the bytes stay as they are.
        rx_delivery::Delivery(frame, registers()).write_back(d, std::uint16_t(length), true);
        advance(1);
        return Status::Written;
    }

    // A tag the NIC strips moves the bytes after it: not in place.
    bool in_place(std::span<const std::uint8_t> frame) const override {
        return !rx_delivery::Delivery(frame, registers()).vlan_stripped();
    }

    std::uint32_t window_frame_offset() const override { return 0; }
    std::uint32_t position() const override { return head_; }

    // RDH is already out (advance() publishes it per frame), and no owner
    // change can come in between: the owner changes RDH only under the
    // producer lock this batch holds, or posts it for our unlock to apply.
    Notify finish() override {
        if (!wrote_) return Notify::None;
        // Moderated and unmasked: the owner's timers decide when RXT0 is
        // set and the line rises. Masked (a polling driver, or NAPI with
        // IMC): set the cause now, no interrupt either way.
        constexpr std::uint32_t rxt0 = icr::RXT0;
        if ((state_->link_flags.load(std::memory_order_acquire) & nic::kOwnerRxIrqModerated) &&
            (state_->ims.load(std::memory_order_seq_cst) & rxt0))
            return state_->defer_rx_irq() ? Notify::Owner : Notify::None;
        return state_->raise(rxt0) ? Notify::Interrupt : Notify::None;
    }

private:
    // RDH moves with each frame, not once per batch: a producer that dies
    // mid-batch (its process killed while it holds the lock) leaves RDH
    // past every frame whose DD the guest may already have seen, so the
    // next producer does not write over a frame the guest is reading.
    void advance(std::uint32_t descriptors) {
        head_ = (head_ + descriptors) % entries_;
        state_->publish_rdh(head_);
        wrote_ = true;
    }

    // The owner's registers that shape a delivery (its published copy;
    // defaults, no tag stripping and no checksums, if it publishes none).
    rx_delivery::Registers registers() const {
        rx_delivery::Registers regs;
        regs.vet = 0x8100;
        if (filter_) {
            auto word = [this](unsigned index) { return state_->e1000.filter_word(index); };
            regs.ctrl = word(rx_filter::kCtrlWord);
            regs.vet = word(rx_filter::kVetWord);
            regs.rxcsum = word(rx_filter::kRxcsumWord);
        }
        regs.rctl = fcs_ ? 0 : rctl::SECRC;  // as the ring description says
        return regs;
    }


    vmm::GuestMemory* memory_ = nullptr;
    nic::SharedNicState* state_ = nullptr;
    std::uint64_t base_ = 0;
    std::uint32_t entries_ = 0, buffer_size_ = 0, head_ = 0;
    bool fcs_ = false;
    bool filter_ = false;  // the owner published its receive filter
    bool wrote_ = false;
};

}  // namespace

std::unique_ptr<nic::RxView> make_rx_view() { return std::make_unique<E1000RxView>(); }

}  // namespace xover::e1000
