#include "xover/virtio_net/window_loans.hpp"

#include <atomic>

#include "xover/virtio_net/ring_index.hpp"

namespace xover::virtio_net {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

// One bit of a ledger bitmap. The caller holds the lock the ledger's
// rules name, so a load and a store make a read-modify-write.
bool test(const std::atomic<std::uint64_t>* bits, std::uint16_t k) {
    return bits[k / 64].load(relaxed) >> (k % 64) & 1;
}
void set(std::atomic<std::uint64_t>* bits, std::uint16_t k, bool on) {
    std::uint64_t w = bits[k / 64].load(relaxed);
    std::uint64_t m = std::uint64_t(1) << (k % 64);
    bits[k / 64].store(on ? w | m : w & ~m, relaxed);
}

}  // namespace

WindowLoans::Look WindowLoans::view(vmm::GuestMemory& memory, const nic::SharedNicState& receiver,
                                    Ring& ring) const {
    nic::SharedNicState::RxRing r;
    if (!receiver.read_rx_ring(r)) return Look::Busy;  // its owner is changing it: look later
    if (!(receiver.link_flags.load(std::memory_order_acquire) & nic::kOwnerRxEnabled) ||
        r.kind != nic::RxRingKind::VirtioSplit)
        return Look::Gone;
    std::uint32_t n = r.ring_entries;
    if (n == 0 || n > kMaxHeads || (n & (n - 1)) != 0 || r.avail_gpa % 2 != 0 || r.used_gpa % 4 != 0)
        return Look::Gone;
    std::uint32_t recorded = l_.ring_size.load(relaxed);
    if (recorded != 0 && (r.avail_gpa != l_.avail_gpa.load(relaxed) || n != recorded)) return Look::Gone;  // a new ring
    ring.avail = memory.span(r.avail_gpa, ring::kHeader + 2 * n + 2);
    ring.used = memory.span(r.used_gpa, ring::kHeader + ring::kUsedElement * n + 2);
    if (ring.avail.empty() || ring.used.empty() || reinterpret_cast<std::uintptr_t>(ring.avail.data()) % 2 != 0 ||
        reinterpret_cast<std::uintptr_t>(ring.used.data()) % 4 != 0)
        return Look::Gone;
    ring.size = std::uint16_t(n);
    ring.avail_gpa = r.avail_gpa;
    ring.event_idx = r.features & nic::kRxEventIdx;
    return Look::Ok;
}

// Looks at avail positions [cursor, until): a lent head found there was
// made available after it was lent (lend() keeps the cursor past every
// loan's own position). A slot older than one ring has been overwritten by
// a newer post, which is read instead, so the walk never exceeds the ring.
void WindowLoans::scan(const Ring& ring, std::uint16_t until) {
    std::uint16_t cursor = std::uint16_t(l_.cursor.load(relaxed));
    std::uint16_t distance = std::uint16_t(until - cursor);
    if (distance == 0 || distance >= 0x8000) return;  // nothing new (or the guest moved idx back)
    if (distance > ring.size) cursor = std::uint16_t(until - ring.size);
    for (; cursor != until; ++cursor) {
        std::uint16_t head = ring::load16(ring.avail, ring::kHeader + 2 * std::size_t(cursor & (ring.size - 1)));
        if (head >= kMaxHeads || !test(l_.lent, head)) continue;
        set(l_.lent, head, false);
        set(l_.back, head, true);
    }
    l_.cursor.store(cursor, relaxed);
}

std::size_t WindowLoans::take_back_taken(std::span<std::uint16_t> out) {
    std::size_t n = 0;
    for (unsigned w = 0; w < nic::WindowLoanLedger::kWords && n < out.size(); ++w) {
        std::uint64_t bits = l_.back[w].load(relaxed), moved = 0;
        while (bits != 0 && n < out.size()) {
            unsigned b = unsigned(__builtin_ctzll(bits));
            bits &= bits - 1;
            moved |= std::uint64_t(1) << b;
            out[n++] = std::uint16_t(w * 64 + b);
        }
        if (moved == 0) continue;
        // Marked, then taken, then gone from `back`: a kill anywhere leaves
        // each head recorded at least once (recovered once), never nowhere.
        if (l_.taken_until.load(relaxed) == 0) l_.taken_until.store(nic::WindowLoanLedger::kTakenPending, relaxed);
        l_.taken[w].store(l_.taken[w].load(relaxed) | moved, relaxed);
        l_.back[w].store(bits, relaxed);
    }
    return n;
}

void WindowLoans::will_publish_at(std::uint32_t completion_pos) {
    if (l_.taken_until.load(relaxed) == 0) return;  // nothing taken
    l_.taken_until.store(nic::WindowLoanLedger::kTakenAt | (completion_pos & 0xffff), relaxed);
}

void WindowLoans::settle_taken() {
    if (l_.taken_until.load(relaxed) == 0) return;
    for (auto& w : l_.taken) w.store(0, relaxed);
    l_.taken_until.store(0, relaxed);
}

void WindowLoans::recover_taken(std::uint32_t completion_pos) {
    const std::uint32_t state = l_.taken_until.load(relaxed);
    if (state == 0) return;  // nothing taken: the usual case, one load
    bool published = state == (nic::WindowLoanLedger::kTakenAt | (completion_pos & 0xffff));
    for (unsigned w = 0; w < nic::WindowLoanLedger::kWords; ++w) {
        std::uint64_t t = l_.taken[w].load(relaxed);
        if (t == 0) continue;
        // A head in both (killed mid-move) was not published either way.
        if (!published) l_.back[w].store(l_.back[w].load(relaxed) | t, relaxed);
        l_.taken[w].store(0, relaxed);
    }
    l_.taken_until.store(0, relaxed);
}

void WindowLoans::give_back_all() {
    for (unsigned w = 0; w < nic::WindowLoanLedger::kWords; ++w) {
        l_.back[w].store(l_.back[w].load(relaxed) | l_.lent[w].load(relaxed), relaxed);
        l_.lent[w].store(0, relaxed);
    }
    l_.ring_size.store(0, relaxed);
}

bool WindowLoans::lend(std::uint64_t link, std::uint16_t head, std::uint16_t next_position,
                       vmm::GuestMemory& receiver_memory, const nic::SharedNicState& receiver) {
    if (head >= kMaxHeads) return false;  // the receiver's writer only places heads of its ring
    if (l_.link.load(relaxed) != link) {
        give_back_all();  // loans over an older link: the caller's reclaim completes them
        l_.link.store(link, relaxed);
    }
    bool nothing_lent = true;
    for (const auto& w : l_.lent) nothing_lent = nothing_lent && w.load(relaxed) == 0;
    if (nothing_lent) l_.ring_size.store(0, relaxed);  // start over on the ring as it is now
    Ring ring;
    Look v = view(receiver_memory, receiver, ring);
    if (v == Look::Gone && l_.ring_size.load(relaxed) != 0) {
        give_back_all();  // the ring the earlier loans were made in is gone
        v = view(receiver_memory, receiver, ring);
    }
    if (v != Look::Ok) {
        if (!test(l_.lent, head)) set(l_.back, head, true);  // untrackable: back at once
        return true;
    }
    if (l_.ring_size.load(relaxed) == 0) {
        l_.avail_gpa.store(ring.avail_gpa, relaxed);
        l_.ring_size.store(ring.size, relaxed);
        l_.cursor.store(next_position, relaxed);  // earlier posts say nothing about this loan
    } else {
        scan(ring, next_position);  // earlier posts of `head` are not its return
    }
    // The sender only lends a head it holds no loan of; a return of an
    // older loan of it still waiting here (the sender reset meanwhile) must
    // not complete this one. An older loan that never came back: one loan
    // covers both.
    set(l_.back, head, false);
    set(l_.lent, head, true);
    return true;
}

WindowLoans::Look WindowLoans::look(vmm::GuestMemory& receiver_memory, const nic::SharedNicState& receiver) {
    bool anything_lent = false;
    for (const auto& w : l_.lent) anything_lent = anything_lent || w.load(relaxed) != 0;
    if (!anything_lent) return Look::Ok;
    Ring ring;
    Look v = view(receiver_memory, receiver, ring);
    if (v == Look::Ok) scan(ring, ring::load16(ring.avail, 2));
    if (v == Look::Gone) give_back_all();
    return v;
}

void WindowLoans::arm(vmm::GuestMemory& receiver_memory, const nic::SharedNicState& receiver) {
    if (!any()) return;
    Ring ring;
    if (view(receiver_memory, receiver, ring) != Look::Ok) return;
    if (ring.event_idx)  // notify when avail idx moves past where it is now
        ring::store16(ring.used, ring::kHeader + ring::kUsedElement * ring.size, ring::load16(ring.avail, 2));
    else
        ring::store16(ring.used, 0, 0);  // clear VIRTQ_USED_F_NO_NOTIFY
    std::atomic_thread_fence(std::memory_order_seq_cst);  // before the caller's flag and second look
}

bool WindowLoans::any() const {
    for (unsigned w = 0; w < nic::WindowLoanLedger::kWords; ++w)
        if ((l_.lent[w].load(relaxed) | l_.back[w].load(relaxed) | l_.taken[w].load(relaxed)) != 0) return true;
    return false;
}

std::size_t WindowLoans::outstanding() const {
    std::size_t n = 0;
    for (unsigned w = 0; w < nic::WindowLoanLedger::kWords; ++w)
        n += std::size_t(
            __builtin_popcountll(l_.lent[w].load(relaxed) | l_.back[w].load(relaxed) | l_.taken[w].load(relaxed)));
    return n;
}

// Not the taken heads: a completer publishes them before it settles them,
// and the sender's guest may make one available again in between, as it
// may once it is used.
bool WindowLoans::holds(std::uint16_t head) const {
    return head < kMaxHeads && (test(l_.lent, head) || test(l_.back, head));
}

}  // namespace xover::virtio_net
