// PeerRxWriter for an e1000 peer: legacy receive descriptors from RDH up
// to RDT (both in the peer's shared page), the frame copied into as many
// buffers as it needs, length and DD|EOP written back, RDH advanced.
// The peer's receive filter applies as in its own receive path (the same
// rx_filter::check(), over the registers the owner publishes in its shared
// page): the sender chose this peer by the MAC the broker knows, but the
// guest may since have changed its address, cleared BAM, or left a
// multicast group out of its MTA. No checksum offload: the descriptor
// says IXSM, "ignore checksum indication". RXT0 is raised here, or handed
// to the owner when it moderates interrupts (shared_nic_state.hpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#include "../e1000/checksum.hpp"  // the e1000 model's Ethernet FCS
#include "xover/crossover/peer_rx_writer.hpp"
#include "xover/e1000/registers.hpp"
#include "xover/e1000/rx_filter.hpp"

namespace xover::crossover {

namespace {

constexpr std::size_t kDescriptor = 16;
constexpr std::size_t kMaxFrame = 16384;  // RCTL.LPE limit of the receiving model

class E1000RxWriter final : public PeerRxWriter {
public:
    Begin begin(vmm::GuestMemory& memory, SharedNicState& state) override {
        memory_ = &memory;
        state_ = &state;
        wrote_ = false;
        SharedNicState::RxRing ring;
        if (!state.read_rx_ring(ring)) return Begin::NotReady;  // owner mid-update
        if (!(state.link_flags.load(std::memory_order_acquire) & kOwnerRxEnabled)) return Begin::NotReady;
        if (ring.kind != RxRingKind::E1000Legacy || ring.ring_entries < 2 || ring.buffer_size == 0)
            return Begin::NotReady;
        base_ = ring.ring_gpa;
        entries_ = ring.ring_entries;
        buffer_size_ = ring.buffer_size;
        fcs_ = !(ring.features & kRxStripCrc);
        head_ = state.load_rdh();
        if (head_ >= entries_) return Begin::Broken;
        filter_ = state.link_flags.load(std::memory_order_acquire) & kOwnerRxFilter;
        return Begin::Ready;
    }

    bool accepts(std::span<const std::uint8_t> frame) const override {
        if (!filter_) return true;  // an owner that publishes no filter
        const SharedNicState& s = *state_;
        auto read = [&s](std::uint32_t offset) { return s.filter_word(e1000::rx_filter::word_index(offset)); };
        return e1000::rx_filter::check(frame, read) == e1000::rx_filter::Verdict::Accept;
    }

    Status write(std::span<const std::uint8_t> frame) override {
        std::uint32_t tail = state_->load_rdt();  // acquire: descriptors it covers are the guest's
        if (tail >= entries_) return Status::Bad;
        std::size_t total = frame.size() + (fcs_ ? 4 : 0);
        if (frame.size() > kMaxFrame) return Status::Oversize;
        std::uint32_t needed = std::uint32_t((total + buffer_size_ - 1) / buffer_size_);
        if (needed > entries_ - 1) return Status::Oversize;
        std::uint32_t free = (tail + entries_ - head_) % entries_;
        if (free < needed) return Status::Full;

        // Resolve every descriptor and buffer first: a bad address drops
        // the frame without touching the ring.
        std::array<std::span<std::uint8_t>, kMaxDescriptors> descriptors;
        std::array<std::span<std::uint8_t>, kMaxDescriptors> buffers;
        if (needed > kMaxDescriptors) return Status::Oversize;
        std::size_t remaining = total;
        for (std::uint32_t i = 0; i < needed; ++i) {
            std::uint32_t index = (head_ + i) % entries_;
            descriptors[i] = memory_->span(base_ + std::uint64_t(index) * kDescriptor, kDescriptor);
            if (descriptors[i].empty()) return Status::Bad;
            std::uint64_t address;
            std::memcpy(&address, descriptors[i].data(), 8);
            std::size_t chunk = std::min<std::size_t>(remaining, buffer_size_);
            buffers[i] = memory_->span(address, chunk);
            if (buffers[i].empty()) return Status::Bad;
            remaining -= chunk;
        }
        std::uint8_t crc[4] = {};
        if (fcs_) {
            std::uint32_t c = e1000::crc32_final(e1000::crc32_update(e1000::kCrc32Init, frame));
            for (int i = 0; i < 4; ++i) crc[i] = std::uint8_t(c >> (8 * i));
        }
        std::size_t offset = 0;  // into [frame | crc]
        for (std::uint32_t i = 0; i < needed; ++i) {
            std::span<std::uint8_t> out = buffers[i];
            std::size_t from_frame = offset < frame.size() ? std::min(out.size(), frame.size() - offset) : 0;
            if (from_frame) std::memcpy(out.data(), frame.data() + offset, from_frame);
            for (std::size_t k = from_frame; k < out.size(); ++k) out[k] = crc[offset + k - frame.size()];
            offset += out.size();
            bool last = i + 1 == needed;
            std::uint8_t* d = descriptors[i].data();
            std::uint16_t length = std::uint16_t(out.size());
            std::memcpy(d + 8, &length, 2);
            d[10] = d[11] = 0;  // packet checksum: not provided
            d[13] = 0;          // errors
            d[14] = d[15] = 0;  // special (no VLAN stripped)
            // Data and length are visible before DD tells a polling driver.
            std::atomic_ref<std::uint8_t>(d[12]).store(
                std::uint8_t(e1000::rxd::STA_DD | e1000::rxd::STA_IXSM | (last ? e1000::rxd::STA_EOP : 0)),
                std::memory_order_release);
        }
        head_ = (head_ + needed) % entries_;
        wrote_ = true;
        return Status::Written;
    }

    // Window mode: the sender's TX buffer is this descriptor's buffer
    // (one shared element behind both); only the descriptor is written.
    Status place(std::uint32_t index, std::uint64_t buffer_gpa, std::uint32_t length) override {
        std::uint32_t tail = state_->load_rdt();
        if (tail >= entries_) return Status::Bad;
        if (fcs_ || head_ != index || length > buffer_size_) return Status::Bad;  // copy path instead
        if ((tail + entries_ - head_) % entries_ == 0) return Status::Full;
        auto d = memory_->span(base_ + std::uint64_t(head_) * kDescriptor, kDescriptor);
        if (d.empty()) return Status::Bad;
        std::uint64_t address;
        std::memcpy(&address, d.data(), 8);
        if (address != buffer_gpa) return Status::Bad;
        std::uint16_t len16 = std::uint16_t(length);
        std::memcpy(d.data() + 8, &len16, 2);
        d[10] = d[11] = 0;
        d[13] = 0;
        d[14] = d[15] = 0;
        std::atomic_ref<std::uint8_t>(d[12]).store(
            std::uint8_t(e1000::rxd::STA_DD | e1000::rxd::STA_IXSM | e1000::rxd::STA_EOP), std::memory_order_release);
        head_ = (head_ + 1) % entries_;
        wrote_ = true;
        return Status::Written;
    }

    std::uint32_t window_frame_offset() const override { return 0; }
    std::uint32_t position() const override { return head_; }

    Notify finish() override {
        state_->publish_rdh(head_);
        if (!wrote_) return Notify::None;
        // Moderated and unmasked: the owner's timers decide when RXT0 is
        // set and the line rises. Masked (a polling driver, or NAPI with
        // IMC): set the cause now, no interrupt either way.
        constexpr std::uint32_t rxt0 = e1000::icr::RXT0;
        if ((state_->link_flags.load(std::memory_order_acquire) & kOwnerRxIrqModerated) &&
            (state_->ims.load(std::memory_order_seq_cst) & rxt0))
            return state_->defer_rx_irq() ? Notify::Owner : Notify::None;
        return state_->raise(rxt0) ? Notify::Interrupt : Notify::None;
    }

private:
    static constexpr std::uint32_t kMaxDescriptors = (kMaxFrame + 4 + 255) / 256;

    vmm::GuestMemory* memory_ = nullptr;
    SharedNicState* state_ = nullptr;
    std::uint64_t base_ = 0;
    std::uint32_t entries_ = 0, buffer_size_ = 0, head_ = 0;
    bool fcs_ = false;
    bool filter_ = false;  // the owner published its receive filter
    bool wrote_ = false;
};

}  // namespace

std::unique_ptr<PeerRxWriter> make_e1000_rx_writer() { return std::make_unique<E1000RxWriter>(); }

}  // namespace xover::crossover
