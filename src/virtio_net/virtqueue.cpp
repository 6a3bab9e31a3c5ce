#include "xover/virtio_net/virtqueue.hpp"

#include <atomic>
#include <cstring>

#include "xover/virtio_net/ring_index.hpp"
#include "xover/virtio_net/virtio_spec.hpp"

namespace xover::virtio_net {

namespace {

struct Descriptor {
    std::uint64_t addr;
    std::uint32_t len;
    std::uint16_t flags;
    std::uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

}  // namespace

const char* to_string(RingError error) {
    switch (error) {
    case RingError::None: return "none";
    case RingError::AvailIndexJump: return "avail idx moved by more than the queue size";
    case RingError::HeadOutOfRange: return "chain head out of range";
    case RingError::NextOutOfRange: return "descriptor next out of range";
    case RingError::ChainTooLong: return "descriptor chain loops or is too long";
    case RingError::IndirectNotNegotiated: return "indirect descriptor without INDIRECT_DESC";
    case RingError::IndirectWithNext: return "descriptor has both INDIRECT and NEXT";
    case RingError::NestedIndirect: return "nested indirect descriptor";
    case RingError::IndirectBadLength: return "indirect table length invalid";
    case RingError::AddressOutOfRange: return "buffer outside guest memory";
    }
    return "?";
}

DescriptorChain::DescriptorChain() { segments_.reserve(Virtqueue::kMaxSegments); }

void DescriptorChain::reset(std::uint16_t head) {
    head_ = head;
    segments_.clear();
    readable_bytes_ = 0;
    writable_bytes_ = 0;
}

bool Virtqueue::enable(vmm::GuestMemory& memory, const VirtqueueLayout& layout, bool event_idx, bool indirect) {
    disable();
    std::uint16_t n = layout.size;
    if (n == 0 || n > kMaxSize || (n & (n - 1)) != 0) return false;
    // Alignment from the spec (§2.7): 16 / 2 / 4 bytes.
    if (layout.desc % 16 != 0 || layout.avail % 2 != 0 || layout.used % 4 != 0) return false;
    layout_ = layout;
    event_idx_ = event_idx;
    indirect_ = indirect;
    if (!translate(memory)) {
        layout_ = {};
        return false;
    }
    memory_ = &memory;
    next_avail_ = avail_shadow_ = used_idx_ = signalled_used_ = 0;
    signalled_valid_ = false;
    error_ = RingError::None;
    return true;
}

bool Virtqueue::translate(vmm::GuestMemory& memory) {
    std::uint64_t n = layout_.size;
    // Sizes include used_event / avail_event: they are part of the layout
    // whether or not EVENT_IDX is negotiated.
    auto desc = memory.span(layout_.desc, 16 * n);
    auto avail = memory.span(layout_.avail, ring::kHeader + 2 * n + 2);
    auto used = memory.span(layout_.used, ring::kHeader + ring::kUsedElement * n + 2);
    if (desc.empty() || avail.empty() || used.empty()) return false;
    // Host alignment must match guest alignment for the atomic accesses.
    if (reinterpret_cast<std::uintptr_t>(avail.data()) % 2 != 0 ||
        reinterpret_cast<std::uintptr_t>(used.data()) % 4 != 0)
        return false;
    desc_ = desc;
    avail_ = avail;
    used_ = used;
    return true;
}

void Virtqueue::restore(Position p) {
    next_avail_ = avail_shadow_ = p.next_avail;
    used_idx_ = signalled_used_ = p.used_idx;
    signalled_valid_ = false;  // unknown: the next check interrupts
}

void Virtqueue::resume_at(std::uint16_t index) {
    next_avail_ = avail_shadow_ = used_idx_ = signalled_used_ = index;
    signalled_valid_ = true;
}

bool Virtqueue::resume_at_published(std::uint16_t index) {
    if (!enabled()) return false;
    // Our own position may be far behind (producers moved it since), so
    // the test is against the guest's avail index alone: a producer stops
    // at it, and never more than a ring of buffers short of it.
    if (std::uint16_t(read_avail_idx() - index) > layout_.size) return false;
    resume_at(index);
    return true;
}

std::uint16_t Virtqueue::visible_position(std::uint16_t published) {
    if (!enabled()) return published;
    std::uint16_t used = ring::load16(used_, 2);
    std::uint16_t ahead = std::uint16_t(used - published);
    if (ahead == 0 || ahead > layout_.size) return published;
    if (std::uint16_t(read_avail_idx() - used) > layout_.size) return published;  // past avail
    return used;
}

void Virtqueue::continue_used_at(std::uint16_t used) {
    used_idx_ = signalled_used_ = used;
    signalled_valid_ = true;
}

void Virtqueue::disable() {
    memory_ = nullptr;
    layout_ = {};
    desc_ = avail_ = used_ = {};
    next_avail_ = avail_shadow_ = used_idx_ = signalled_used_ = 0;
    signalled_valid_ = false;
    error_ = RingError::None;
}

bool Virtqueue::remap(vmm::GuestMemory& memory) {
    if (!enabled()) return false;
    if (!translate(memory)) {
        disable();
        return false;
    }
    memory_ = &memory;
    return true;
}

std::uint16_t Virtqueue::read_avail_idx() { return ring::load16(avail_, 2); }

std::uint16_t Virtqueue::pending() {
    if (!enabled()) return 0;
    avail_shadow_ = read_avail_idx();
    return std::uint16_t(avail_shadow_ - next_avail_);
}

Virtqueue::PopStatus Virtqueue::pop(DescriptorChain& out) {
    if (!enabled()) return PopStatus::Empty;
    if (error_ != RingError::None) return PopStatus::Broken;
    if (avail_shadow_ == next_avail_) {
        avail_shadow_ = read_avail_idx();  // acquire: ring entries below are current
        if (avail_shadow_ == next_avail_) return PopStatus::Empty;
    }
    if (std::uint16_t(avail_shadow_ - next_avail_) > layout_.size) {
        error_ = RingError::AvailIndexJump;
        return PopStatus::Broken;
    }
    std::uint16_t slot = next_avail_ & std::uint16_t(layout_.size - 1);
    std::uint16_t head = ring::load16(avail_, ring::kHeader + 2 * std::size_t(slot));
    if (!walk(head, out)) return PopStatus::Broken;
    ++next_avail_;
    return PopStatus::Chain;
}

bool Virtqueue::add_segment(DescriptorChain& out, std::uint64_t addr, std::uint32_t len, bool writable) {
    if (len == 0) return true;  // legal, carries nothing
    if (out.segments_.size() >= kMaxSegments) return fail(RingError::ChainTooLong);
    auto bytes = memory_->span(addr, len);
    if (bytes.empty()) return fail(RingError::AddressOutOfRange);
    out.segments_.push_back(BufferSegment{bytes, writable, addr});
    (writable ? out.writable_bytes_ : out.readable_bytes_) += len;
    return true;
}

bool Virtqueue::walk(std::uint16_t head, DescriptorChain& out) {
    out.reset(head);
    const std::uint16_t n = layout_.size;
    if (head >= n) return fail(RingError::HeadOutOfRange);
    std::uint16_t index = head;
    // A well-formed chain visits each descriptor at most once, so more than
    // n steps means a loop.
    for (unsigned steps = 1;; ++steps) {
        if (steps > n) return fail(RingError::ChainTooLong);
        Descriptor d;
        std::memcpy(&d, desc_.data() + 16 * std::size_t(index), sizeof d);
        if (d.flags & spec::kDescIndirect) {
            if (!indirect_) return fail(RingError::IndirectNotNegotiated);
            if (d.flags & spec::kDescNext) return fail(RingError::IndirectWithNext);
            if (d.len == 0 || d.len % 16 != 0) return fail(RingError::IndirectBadLength);
            std::uint32_t count = d.len / 16;
            if (count > kMaxSegments) return fail(RingError::IndirectBadLength);
            auto table = memory_->span(d.addr, d.len);
            if (table.empty()) return fail(RingError::AddressOutOfRange);
            std::uint32_t i = 0;
            for (std::uint32_t inner = 1;; ++inner) {
                if (inner > count) return fail(RingError::ChainTooLong);
                Descriptor e;
                std::memcpy(&e, table.data() + 16 * std::size_t(i), sizeof e);
                if (e.flags & spec::kDescIndirect) return fail(RingError::NestedIndirect);
                if (!add_segment(out, e.addr, e.len, e.flags & spec::kDescWrite)) return false;
                if (!(e.flags & spec::kDescNext)) break;
                if (e.next >= count) return fail(RingError::NextOutOfRange);
                i = e.next;
            }
            return true;  // an indirect descriptor ends the chain
        }
        if (!add_segment(out, d.addr, d.len, d.flags & spec::kDescWrite)) return false;
        if (!(d.flags & spec::kDescNext)) return true;
        if (d.next >= n) return fail(RingError::NextOutOfRange);
        index = d.next;
    }
}

void Virtqueue::add_used(std::uint16_t head, std::uint32_t written) {
    if (!enabled()) return;
    std::uint16_t slot = used_idx_ & std::uint16_t(layout_.size - 1);
    std::uint32_t element[2] = {head, written};
    std::memcpy(used_.data() + ring::kHeader + ring::kUsedElement * slot, element, sizeof element);
    ++used_idx_;
}

void Virtqueue::publish_used() {
    if (!enabled()) return;
    ring::store16(used_, 2, used_idx_);  // release: elements are visible first
}

bool Virtqueue::should_interrupt() {
    if (!enabled()) return false;
    // Our used idx store must be visible before we read the driver's
    // suppression state, or both sides could decide to skip.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!event_idx_) return !(ring::load16(avail_, 0) & spec::kAvailNoInterrupt);
    std::uint16_t old_idx = signalled_used_;
    bool valid = signalled_valid_;
    signalled_used_ = used_idx_;
    signalled_valid_ = true;
    if (!valid) return true;
    std::uint16_t used_event = ring::load16(avail_, ring::kHeader + 2 * std::size_t(layout_.size));
    return need_event(used_event, used_idx_, old_idx);
}

bool Virtqueue::enable_notifications() {
    if (!enabled()) return false;
    if (event_idx_)
        ring::store16(used_, ring::kHeader + ring::kUsedElement * layout_.size, next_avail_);
    else
        ring::store16(used_, 0, 0);
    // The store above must be visible before we re-read avail idx.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_shadow_ = read_avail_idx();
    return avail_shadow_ != next_avail_;
}

void Virtqueue::disable_notifications() {
    if (!enabled()) return;
    // With EVENT_IDX, leaving avail_event behind is enough: the driver only
    // notifies when it crosses it.
    if (!event_idx_) ring::store16(used_, 0, spec::kUsedNoNotify);
}

}  // namespace xover::virtio_net
