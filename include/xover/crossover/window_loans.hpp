// Window mode with a virtio-net peer, in the sender's process: the RX
// buffers of the peer that hold our frames in place. A frame sent from TX
// head k sits in the peer's RX buffer k (the same shared element behind
// both), so TX head k may only be reused by our guest once the peer's
// guest has made RX head k available again — a virtio driver returns a
// used buffer by putting its head id back in the avail ring, in any order.
//
// How "made available again" is seen: a cursor walks the peer's avail ring
// (through our mapping of its RAM) from where it stood when the head was
// lent; a head found at a later position is back. Every ring value comes
// from the peer's guest: positions are bounded by the ring size, heads by
// kMaxHeads, every address goes through GuestMemory. A peer guest that
// lies only delays or hastens its own buffers; a peer that resets its RX
// queue (the ring description changes or RX goes off) gets every loan back.
//
// Threads: the owning CrossoverPort's (its NIC's device lock held).
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::crossover {

class WindowLoans {
public:
    static constexpr std::size_t kMaxHeads = 1024;  // largest split ring a virtio device accepts

    // RX head `head` of the peer now holds our frame; the peer's ring was
    // consumed up to avail position `next_position` (exclusive). A loan
    // that cannot be tracked (no usable ring: cannot happen under the
    // producer lock that placed the frame) is handed back at once.
    void lend(std::uint16_t head, std::uint16_t next_position, vmm::GuestMemory& peer,
              const nic::SharedNicState& state);
    // Moves heads the peer's guest has made available again (all of them
    // if its RX ring went away) into `out`; returns how many. Heads that do
    // not fit wait for the next call.
    std::size_t reclaim(vmm::GuestMemory& peer, const nic::SharedNicState& state, std::span<std::uint16_t> out);
    // Asks the peer's guest to notify its device on its next RX post (the
    // device then rings the waiting producers' doorbells). The caller sets
    // producer_waiting and reclaims once more afterwards.
    void arm(vmm::GuestMemory& peer, const nic::SharedNicState& state);
    // Forgets every loan (the link is gone; the caller completes them all).
    void clear();
    std::size_t outstanding() const { return outstanding_ + ready_count_; }

private:
    struct Ring {
        std::span<std::uint8_t> avail, used;
        std::uint64_t avail_gpa = 0;
        std::uint16_t size = 0;
        bool event_idx = false;
    };
    enum class View { Ok, Busy, Gone };
    View view(vmm::GuestMemory& peer, const nic::SharedNicState& state, Ring& ring) const;
    void scan(const Ring& ring, std::uint16_t until);
    void give_back_all();
    void push_ready(std::uint16_t head);

    std::bitset<kMaxHeads> lent_;
    std::size_t outstanding_ = 0;  // bits set in lent_
    std::array<std::uint16_t, kMaxHeads> ready_{};  // back, not yet handed out
    std::size_t ready_count_ = 0;
    std::uint16_t cursor_ = 0;  // next avail position to look at
    std::uint64_t avail_gpa_ = 0;  // the ring the loans were made in
    std::uint32_t ring_size_ = 0;
};

}  // namespace xover::crossover
