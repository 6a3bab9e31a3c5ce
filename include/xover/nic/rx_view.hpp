// A NIC model's RX view: placing frames in that NIC's RX ring from any
// process — a crossover peer's that sends to it (copy mode: one memcpy per
// frame, through the sender's mapping of the receiver's RAM), or the NIC's
// own process moving frames a peer parked (tx_handoff.hpp). It places a
// frame as that NIC itself would: its receive filter, VLAN strip, checksum
// status, FCS; then publishes the new position and raises the RX interrupt
// as the owner's masks and moderation allow. It works on the receiver's
// guest memory and its shared page only, so it holds no state of the
// receiver's process.
//
// One implementation per receiving model, in that model's folder, used by
// every sending model (any model to any model); the crossover engine picks
// one by the receiver's model and never includes a model header.
//
// Protocol (the caller holds the receiver's producer lock from begin() to
// finish()):
//   begin(memory, state)  reads the ring description and position
//   accepts(frame)        the receiver's filter: false = its NIC would
//                         drop the frame (never write it)
//   write(frame) ...      places frames (never blocks, never allocates)
//   finish()              publishes the new position, sets the RX cause
//                         and says how the receiver learns of it (Notify)
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::nic {

class RxView {
public:
    enum class Begin {
        Ready,     // frames may be written
        NotReady,  // the receiver has not enabled receive (yet): wait for it
        Broken,    // the ring description is unusable: drop
    };
    enum class Status {
        Written,   // in the receiver's ring
        Full,      // no room now: keep the frame, wait for the receiver's doorbell
        Oversize,  // can never fit this ring: dropped
        Bad,       // descriptor or buffer outside the receiver's RAM: dropped
    };
    // What finish() asks the caller to do once the lock is released.
    enum class Notify {
        None,       // nothing placed, or the interrupt is masked
        Interrupt,  // write the receiver's irqfd (virtio-net: as its route says)
        Owner,      // ring the receiver's doorbell: its owner delivers the
                    // interrupt with its own moderation timers
    };

    virtual ~RxView() = default;
    virtual Begin begin(vmm::GuestMemory& memory, SharedNicState& state) = 0;
    // The receiving NIC's address/VLAN filter (between begin() and
    // finish(), under the lock). Default: no filter, accept everything.
    virtual bool accepts(std::span<const std::uint8_t> /*frame*/) const { return true; }
    // Window mode: whether the frame can be handed over as it lies (false:
    // the receiving NIC would rewrite it, e.g. strip a VLAN tag).
    virtual bool in_place(std::span<const std::uint8_t> /*frame*/) const { return true; }
    virtual Status write(std::span<const std::uint8_t> frame) = 0;
    // After Full, before giving up: asks the receiver's guest to tell its
    // device when it adds buffers (virtio notifications); returns true if
    // room appeared meanwhile (write again). e1000: RDT writes always exit.
    virtual bool arm_space_notification() { return false; }
    virtual Notify finish() = 0;
    // Window mode: the frame is already in the buffer of the next RX
    // descriptor, if that descriptor is number `index` and points at
    // `buffer_gpa` (the frame after window_frame_offset() bytes of model
    // header); writes the completion only (no copy). Bad: not in place
    // (the caller copies instead). Default: never in place.
    virtual Status place(std::uint32_t /*index*/, std::uint64_t /*buffer_gpa*/, std::uint32_t /*length*/) {
        return Status::Bad;
    }
    // Where this model's RX buffer holds the frame (e1000 0, virtio-net
    // 12, after virtio_net_hdr): a sender whose buffer layout differs
    // cannot hand its buffers over in place.
    virtual std::uint32_t window_frame_offset() const { return ~0u; }
    // The receiver ring's producer position after the last frame written
    // (e1000 RDH, virtio-net next avail index).
    virtual std::uint32_t position() const { return 0; }
    // The receiver's RX interrupt route in its page, for a model whose
    // interrupt a producer may not always write itself (virtio-net: an
    // MSI-X vector that can be masked, peer_interrupt.hpp). None: write
    // the receiver's irqfd (e1000: finish() already checked ICR/IMS).
    virtual PeerInterrupt* rx_route(SharedNicState& /*receiver_state*/) { return nullptr; }
};

}  // namespace xover::nic

// Each model's factory (defined in its own library).
namespace xover::e1000 {
std::unique_ptr<nic::RxView> make_rx_view();
}
namespace xover::virtio_net {
std::unique_ptr<nic::RxView> make_rx_view();
}
