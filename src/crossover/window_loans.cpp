#include "xover/crossover/window_loans.hpp"

#include <algorithm>
#include <atomic>

namespace xover::crossover {

namespace {

constexpr std::size_t kRingHeader = 4;  // flags, idx (avail and used alike)
constexpr std::size_t kUsedElement = 8;

// Single aligned 16-bit accesses, as the peer's driver expects (alignment
// is checked in view()).
std::uint16_t load16(std::span<std::uint8_t> ring, std::size_t offset) {
    return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(ring.data() + offset))
        .load(std::memory_order_acquire);
}
void store16(std::span<std::uint8_t> ring, std::size_t offset, std::uint16_t v) {
    std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(ring.data() + offset))
        .store(v, std::memory_order_release);
}

}  // namespace

WindowLoans::View WindowLoans::view(vmm::GuestMemory& peer, const nic::SharedNicState& state, Ring& ring) const {
    nic::SharedNicState::RxRing r;
    if (!state.read_rx_ring(r)) return View::Busy;  // the owner is changing it: look later
    if (!(state.link_flags.load(std::memory_order_acquire) & nic::kOwnerRxEnabled) ||
        r.kind != nic::RxRingKind::VirtioSplit)
        return View::Gone;
    std::uint32_t n = r.ring_entries;
    if (n == 0 || n > kMaxHeads || (n & (n - 1)) != 0 || r.avail_gpa % 2 != 0 || r.used_gpa % 4 != 0)
        return View::Gone;
    if (ring_size_ != 0 && (r.avail_gpa != avail_gpa_ || n != ring_size_)) return View::Gone;  // a new ring
    ring.avail = peer.span(r.avail_gpa, kRingHeader + 2 * n + 2);
    ring.used = peer.span(r.used_gpa, kRingHeader + kUsedElement * n + 2);
    if (ring.avail.empty() || ring.used.empty() || reinterpret_cast<std::uintptr_t>(ring.avail.data()) % 2 != 0 ||
        reinterpret_cast<std::uintptr_t>(ring.used.data()) % 4 != 0)
        return View::Gone;
    ring.size = std::uint16_t(n);
    ring.avail_gpa = r.avail_gpa;
    ring.event_idx = r.features & nic::kRxEventIdx;
    return View::Ok;
}

// Looks at avail positions [cursor_, until): a lent head found there was
// made available after it was lent (lend() keeps the cursor past every
// loan's own position). A slot older than one ring has been overwritten by
// a newer post, which is read instead, so the walk never exceeds the ring.
void WindowLoans::scan(const Ring& ring, std::uint16_t until) {
    std::uint16_t distance = std::uint16_t(until - cursor_);
    if (distance == 0 || distance >= 0x8000) return;  // nothing new (or the guest moved idx back)
    if (distance > ring.size) cursor_ = std::uint16_t(until - ring.size);
    for (; cursor_ != until; ++cursor_) {
        std::uint16_t head = load16(ring.avail, kRingHeader + 2 * std::size_t(cursor_ & (ring.size - 1)));
        if (head >= kMaxHeads || !lent_[head]) continue;
        lent_[head] = false;
        --outstanding_;
        push_ready(head);
    }
}

void WindowLoans::push_ready(std::uint16_t head) {
    // Each head is lent at most once at a time, so this only fills up
    // with a guest that makes the untrackable case happen on purpose.
    if (ready_count_ < kMaxHeads) ready_[ready_count_++] = head;
}

void WindowLoans::give_back_all() {
    for (std::size_t h = 0; h < kMaxHeads && outstanding_ != 0; ++h) {
        if (!lent_[h]) continue;
        lent_[h] = false;
        --outstanding_;
        push_ready(std::uint16_t(h));
    }
    ring_size_ = 0;
}

void WindowLoans::lend(std::uint16_t head, std::uint16_t next_position, vmm::GuestMemory& peer,
                       const nic::SharedNicState& state) {
    if (head >= kMaxHeads) return;  // the peer's writer only places heads of its ring
    if (outstanding_ == 0) ring_size_ = 0;  // nothing lent: start over on the ring as it is now
    Ring ring;
    View v = view(peer, state, ring);
    if (v == View::Gone && ring_size_ != 0) {
        give_back_all();  // the ring the earlier loans were made in is gone
        v = view(peer, state, ring);
    }
    if (v != View::Ok) {
        if (!lent_[head]) push_ready(head);  // untrackable: back at once
        return;
    }
    if (ring_size_ == 0) {
        avail_gpa_ = ring.avail_gpa;
        ring_size_ = ring.size;
        cursor_ = next_position;  // earlier posts say nothing about this loan
    } else {
        scan(ring, next_position);  // earlier posts of `head` are not its return
    }
    // The sender only lends a head it holds no loan of; a return of an
    // older loan of it still waiting here (the sender reset meanwhile) must
    // not complete this one.
    auto end = std::remove(ready_.begin(), ready_.begin() + std::ptrdiff_t(ready_count_), head);
    ready_count_ = std::size_t(end - ready_.begin());
    if (lent_[head]) return;  // an older loan never came back: one loan covers both
    lent_[head] = true;
    ++outstanding_;
}

std::size_t WindowLoans::reclaim(vmm::GuestMemory& peer, const nic::SharedNicState& state,
                                 std::span<std::uint16_t> out) {
    if (outstanding_ != 0) {
        Ring ring;
        switch (view(peer, state, ring)) {
        case View::Ok: scan(ring, load16(ring.avail, 2)); break;
        case View::Gone: give_back_all(); break;
        case View::Busy: break;
        }
    }
    std::size_t n = std::min(out.size(), ready_count_);
    std::copy_n(ready_.begin(), n, out.begin());
    std::copy(ready_.begin() + std::ptrdiff_t(n), ready_.begin() + std::ptrdiff_t(ready_count_), ready_.begin());
    ready_count_ -= n;
    return n;
}

void WindowLoans::arm(vmm::GuestMemory& peer, const nic::SharedNicState& state) {
    if (outstanding_ == 0) return;
    Ring ring;
    if (view(peer, state, ring) != View::Ok) return;
    if (ring.event_idx)  // notify when avail idx moves past where it is now
        store16(ring.used, kRingHeader + kUsedElement * ring.size, load16(ring.avail, 2));
    else
        store16(ring.used, 0, 0);  // clear VIRTQ_USED_F_NO_NOTIFY
    std::atomic_thread_fence(std::memory_order_seq_cst);  // before the caller's flag and second look
}

void WindowLoans::clear() {
    lent_.reset();
    outstanding_ = 0;
    ready_count_ = 0;
    ring_size_ = 0;
}

}  // namespace xover::crossover
