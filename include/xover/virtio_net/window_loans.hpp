// Window mode with virtio-net on both ends: the record of the sender's TX
// heads whose frames sit in the receiver's RX buffers. A frame sent from TX
// head k sits in the receiver's RX buffer k (the same shared element behind
// both), so the sender's guest may reuse TX head k only once the
// receiver's guest has made RX head k available again — a virtio driver
// returns a used buffer by putting its head id back in the avail ring, in
// any order.
//
// The record (nic::WindowLoanLedger) lives in the sender's shared page, so
// whoever is awake completes a returned head, through the same
// TxView::complete_window: the receiver's process while it serves its
// guest's RX notify, or the sender's process in its own TX work. No thread
// is woken for it.
//
// How "made available again" is seen: a cursor walks the receiver's avail
// ring from where it stood when the head was lent; a lent head found at a
// later position is back. Every ring value comes from the receiver's
// guest: positions are bounded by the ring size, heads by kMaxHeads, every
// address goes through GuestMemory. A guest that lies only delays or
// hastens its own buffers; a receiver that resets its RX queue (the ring
// description changes or RX goes off) gives every loan back.
//
// Locks: lend() and look() hold the receiver's producer lock (the page of
// the ring they read). A completer, in either process, also holds the
// sender's TX handoff lock around look() and the taking: it writes the
// sender's TX used ring, and the sender's forget() (a reset, in the
// sender's process) holds that lock too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::virtio_net {

class WindowLoans {
public:
    static constexpr std::size_t kMaxHeads = nic::WindowLoanLedger::kMaxHeads;

    explicit WindowLoans(nic::WindowLoanLedger& ledger) : l_(ledger) {}

    // RX head `head` of the receiver now holds the frame of our TX head
    // `head`, placed over window link `link`; the receiver's ring was
    // consumed up to avail position `next_position` (exclusive). False:
    // the loan cannot be tracked (no usable ring): the caller completes
    // the head at once.
    bool lend(std::uint64_t link, std::uint16_t head, std::uint16_t next_position, vmm::GuestMemory& receiver_memory,
              const nic::SharedNicState& receiver);
    // Moves the heads the receiver's guest made available again to `back`
    // (every loan, when its RX ring went away). Busy: the ring is being
    // changed, look later.
    enum class Look { Ok, Busy, Gone };
    Look look(vmm::GuestMemory& receiver_memory, const nic::SharedNicState& receiver);
    // A completer (either process) completing heads that came back in the
    // sender's used ring, in three steps a SIGKILL may cut anywhere:
    // take_back_taken() (up to out.size() heads; how many; the heads
    // stay recorded as taken), will_publish_at(the completion position
    // after them), and, once published, settle_taken(). recover_taken()
    // settles what a dead completer left, at the first look after it (the
    // caller holds the handoff lock, or the receiver's producer lock, which
    // a completer holds throughout): taken heads go back to `back` unless
    // `completion_pos` says they were published.
    std::size_t take_back_taken(std::span<std::uint16_t> out);
    void will_publish_at(std::uint32_t completion_pos);
    void settle_taken();
    void recover_taken(std::uint32_t completion_pos);
    // Asks the receiver's guest to notify its device on its next RX post
    // (the device then rings the waiting producers' doorbells). The caller
    // sets producer_waiting and looks once more afterwards.
    void arm(vmm::GuestMemory& receiver_memory, const nic::SharedNicState& receiver);
    // Every loan is back (the link is gone; taken heads are the caller's
    // to recover_taken() first).
    void give_back_all();
    // Forgets every loan (a reset of the sender's TX queue, or the link is
    // gone: the caller completes or drops what it lent).
    void forget() { l_.clear(); }

    std::uint64_t link() const { return l_.link.load(std::memory_order_relaxed); }
    bool any() const;  // a head lent or back
    std::size_t outstanding() const;  // heads lent or back
    bool holds(std::uint16_t head) const;  // head is lent or back (not taken: see there)

private:
    struct Ring {
        std::span<std::uint8_t> avail, used;
        std::uint64_t avail_gpa = 0;
        std::uint16_t size = 0;
        bool event_idx = false;
    };
    Look view(vmm::GuestMemory& memory, const nic::SharedNicState& receiver, Ring& ring) const;
    void scan(const Ring& ring, std::uint16_t until);

    nic::WindowLoanLedger& l_;
};

}  // namespace xover::virtio_net
