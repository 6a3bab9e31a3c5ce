// Writing frames straight into a crossover peer's RX ring, from the
// sender's process, through the sender's mapping of the peer's RAM (copy
// mode: one memcpy per frame). One implementation per receiving model
// (e1000 legacy descriptors, virtio-net split queue), used by every sending
// model: any model to any model.
//
// Protocol (the caller, CrossoverPort, holds the peer's producer lock from
// begin() to finish()):
//   begin(memory, state)  reads the ring description and position
//   accepts(frame)        the peer's receive filter: false = its NIC
//                         would drop the frame (never write it)
//   write(frame) ...      places frames (never blocks, never allocates)
//   finish()              publishes the new position, sets the RX cause
//                         and says how the peer learns of it (Notify)
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::crossover {

class PeerRxWriter {
public:
    enum class Begin {
        Ready,     // frames may be written
        NotReady,  // the peer has not enabled receive (yet): wait for it
        Broken,    // the ring description is unusable: drop
    };
    enum class Status {
        Written,   // in the peer's ring
        Full,      // no room now: keep the frame, wait for the peer's doorbell
        Oversize,  // can never fit this ring: dropped
        Bad,       // descriptor or buffer outside the peer's RAM: dropped
    };
    // What finish() asks the caller to do once the lock is released.
    enum class Notify {
        None,       // nothing placed, or the interrupt is masked
        Interrupt,  // write the peer's irqfd (CrossoverPort::interrupt)
        Owner,      // ring the peer's doorbell: its owner delivers the
                    // interrupt with its own moderation timers
    };

    virtual ~PeerRxWriter() = default;
    virtual Begin begin(vmm::GuestMemory& memory, nic::SharedNicState& state) = 0;
    // The peer NIC's receive address/VLAN filter (between begin() and
    // finish(), under the lock). Default: no filter, accept everything.
    virtual bool accepts(std::span<const std::uint8_t> /*frame*/) const { return true; }
    // Window mode: whether the frame can be handed over as it lies (false:
    // the receiving NIC would rewrite it, e.g. strip a VLAN tag).
    virtual bool in_place(std::span<const std::uint8_t> /*frame*/) const { return true; }
    virtual Status write(std::span<const std::uint8_t> frame) = 0;
    // After Full, before giving up: asks the peer's guest to tell its
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
    // The peer ring's producer position after the last frame written
    // (e1000 RDH, virtio-net next avail index).
    virtual std::uint32_t position() const { return 0; }
};

// "e1000" or "virtio-net"; nullptr for an unknown model.
std::unique_ptr<PeerRxWriter> make_peer_rx_writer(std::string_view peer_model);

}  // namespace xover::crossover
