// The device side of one split virtqueue (virtio 1.2 §2.7): walks the
// descriptor chains the driver made available and returns them through the
// used ring. Everything it touches goes through vmm::GuestMemory, so the
// same walker works on this VM's RAM or on a peer's RAM mapped from a memfd
// (the crossover writes straight into a peer's RX queue with it).
//
// Hostile drivers are expected: every index is range-checked, chain walks
// are bounded by the queue size, indirect tables are checked for length and
// nesting, and any guest address that is not entirely inside guest memory
// makes pop() report Broken with a reason instead of touching it.
//
// Not thread-safe: the owning device serialises calls with its lock.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xover/vmm/guest_memory.hpp"

namespace xover::virtio_net {

// Where the driver put the three parts of the ring (queue_desc/avail/used).
struct VirtqueueLayout {
    std::uint16_t size = 0;  // number of descriptors; a power of two
    std::uint64_t desc = 0;
    std::uint64_t avail = 0;
    std::uint64_t used = 0;
};

// One guest buffer of a chain, already translated to host memory.
struct BufferSegment {
    std::span<std::uint8_t> bytes;
    bool device_writable = false;
    std::uint64_t gpa = 0;  // where the driver put it (window mode checks the address)
};

// A descriptor chain, flattened (indirect tables expanded). Storage is
// reserved once, so popping a chain never allocates.
class DescriptorChain {
public:
    DescriptorChain();

    std::uint16_t head() const { return head_; }
    std::span<const BufferSegment> segments() const { return segments_; }
    std::uint64_t readable_bytes() const { return readable_bytes_; }
    std::uint64_t writable_bytes() const { return writable_bytes_; }

private:
    friend class Virtqueue;
    void reset(std::uint16_t head);
    std::uint16_t head_ = 0;
    std::vector<BufferSegment> segments_;
    std::uint64_t readable_bytes_ = 0;
    std::uint64_t writable_bytes_ = 0;
};

// Why a ring was found malformed; the device sets DEVICE_NEEDS_RESET.
enum class RingError : std::uint8_t {
    None,
    AvailIndexJump,         // avail idx moved by more than the queue size
    HeadOutOfRange,         // avail ring names a descriptor >= size
    NextOutOfRange,         // a next field >= size (or >= indirect count)
    ChainTooLong,           // a loop, or more descriptors than allowed
    IndirectNotNegotiated,  // INDIRECT flag without VIRTIO_RING_F_INDIRECT_DESC
    IndirectWithNext,       // INDIRECT and NEXT both set
    NestedIndirect,         // an indirect table entry that is itself indirect
    IndirectBadLength,      // table length 0 or not a multiple of 16
    AddressOutOfRange,      // a buffer or table not entirely in guest memory
};

const char* to_string(RingError error);

class Virtqueue {
public:
    static constexpr std::uint16_t kMaxSize = 1024;  // split-ring limit we accept
    // Upper bound on segments in one chain, indirect tables included.
    static constexpr std::size_t kMaxSegments = kMaxSize;

    enum class PopStatus { Empty, Chain, Broken };

    Virtqueue() = default;

    // Validates the layout (size a power of two <= kMaxSize, ring parts
    // aligned and entirely in guest memory) and starts at index 0. Returns
    // false and leaves the queue disabled when it is not acceptable.
    bool enable(vmm::GuestMemory& memory, const VirtqueueLayout& layout, bool event_idx, bool indirect);
    void disable();
    bool enabled() const { return memory_ != nullptr; }
    const VirtqueueLayout& layout() const { return layout_; }

    // Re-translates the ring addresses after the guest memory mapping
    // changed under the same guest-physical addresses (slot swap).
    bool remap(vmm::GuestMemory& memory);

    // Takes the next available chain into `out`. Broken: the ring is
    // malformed (see error()); the queue should not be used until reset.
    PopStatus pop(DescriptorChain& out);
    RingError error() const { return error_; }
    // Gives back the `count` most recently popped chains, unconsumed (for
    // lossless back-pressure: the same chains are popped again later).
    void unpop(std::uint16_t count = 1) { next_avail_ = std::uint16_t(next_avail_ - count); }
    // Chains the driver has made available that we have not popped yet.
    std::uint16_t pending();

    // Writes a used element (not yet visible to the driver) ...
    void add_used(std::uint16_t head, std::uint32_t written);
    // ... and makes all added elements visible (release ordering).
    void publish_used();

    // After publish_used(): whether the driver wants an interrupt now
    // (VIRTIO_RING_F_EVENT_IDX: used_event crossed since the last time we
    // said yes; otherwise: VIRTQ_AVAIL_F_NO_INTERRUPT clear).
    bool should_interrupt();

    // Asks the driver to notify us when it adds buffers. Returns true if
    // buffers arrived meanwhile (the caller must look again: the driver may
    // already have decided not to notify).
    bool enable_notifications();
    // Tells the driver notifications are not needed (a hint only).
    void disable_notifications();

    std::uint16_t next_avail() const { return next_avail_; }
    std::uint16_t used_index() const { return used_idx_; }

    // The device-private ring position. Another process that takes over
    // the ring (the crossover writing into a peer's RX queue) continues
    // from the owner's position with restore(); tests use it to start
    // near the 16-bit wrap.
    struct Position {
        std::uint16_t next_avail = 0;
        std::uint16_t used_idx = 0;
    };
    Position position() const { return {next_avail_, used_idx_}; }
    void restore(Position p);
    // Continues an RX queue whose every popped chain has been used (so
    // next avail == used idx == `index`) after another producer moved it:
    // interrupt decisions then cover exactly what is added from here on.
    void resume_at(std::uint16_t index);
    // resume_at() for a position read from the shared page, which peers
    // write too: taken only when it lies at most one ring of buffers
    // before the guest's avail index (producers consume only what the
    // guest made available). False: ignored, we keep ours.
    bool resume_at_published(std::uint16_t index);
    // The RX position producers reached, given the one they published:
    // each producer uses every chain it pops and publishes the used index
    // before the position, so a used index in guest memory 1..size ahead
    // of `published` (and not past avail) means one died in between, and
    // the used index is where the ring really stands. Otherwise
    // `published`. Only for an RX queue whose owner wrote the used index
    // when it went live (VirtioNet::activated).
    std::uint16_t visible_position(std::uint16_t published);
    // Continues adding used elements at `used` after another process
    // completed some (the crossover's TX handoff); interrupt decisions
    // cover what is added from here on.
    void continue_used_at(std::uint16_t used);
    // Another process added used elements up to `used` and decided about
    // their interrupt; our next decision still covers what we added since
    // our last one, so none is lost (at worst one more is raised).
    void adopt_used(std::uint16_t used) { used_idx_ = used; }

private:
    bool translate(vmm::GuestMemory& memory);
    bool fail(RingError e) { error_ = e; return false; }
    bool walk(std::uint16_t head, DescriptorChain& out);
    bool add_segment(DescriptorChain& out, std::uint64_t addr, std::uint32_t len, bool writable);
    std::uint16_t read_avail_idx();

    vmm::GuestMemory* memory_ = nullptr;
    VirtqueueLayout layout_{};
    bool event_idx_ = false;
    bool indirect_ = false;
    std::span<std::uint8_t> desc_;
    std::span<std::uint8_t> avail_;
    std::span<std::uint8_t> used_;
    std::uint16_t next_avail_ = 0;      // next avail ring slot we will pop
    std::uint16_t avail_shadow_ = 0;    // last avail idx read from the driver
    std::uint16_t used_idx_ = 0;        // next used slot (published or not)
    std::uint16_t signalled_used_ = 0;  // used idx when we last interrupted
    bool signalled_valid_ = false;
    RingError error_ = RingError::None;
};

// vring_need_event semantics: with event index `event`, moving an index
// from `old_idx` to `new_idx` crosses it iff event is in [old_idx, new_idx)
// modulo 2^16.
constexpr bool need_event(std::uint16_t event, std::uint16_t new_idx, std::uint16_t old_idx) {
    return std::uint16_t(new_idx - event - 1) < std::uint16_t(new_idx - old_idx);
}

}  // namespace xover::virtio_net
