// A change of a NIC's receive side that producers must honour (a new ring
// description, a new producer position, receive on or off), and the slot
// in the shared state page where such a change waits for the producer
// lock's holder.
//
// Why the owner never waits for the lock: it changes its RX side on a
// guest register write (RDBA, RDLEN, RCTL, RDH; a virtio queue enable or
// reset), on a vCPU thread, holding its device lock. A producer in another
// process holds the lock for one batch, and for much longer when that
// process is descheduled or stopped (SIGSTOP). So when the lock is busy the
// owner posts the change here and goes on. The holder applies it when it
// releases the lock, or the next taker when it takes the lock. A batch in
// flight finishes with the old description, as DMA in flight does on real
// hardware while its driver rewrites the ring registers; no batch starts
// with it.
//
// Ordering. `state` packs a sequence count (high 32 bits, odd while the
// owner writes the fields) with the bits of the change posted and not yet
// applied (low 32 bits). A holder reads the fields between two reads of
// one even `state`, then takes the change with one CAS from that value to
// "nothing posted". So a change is applied at most once and never after a
// newer one, and the owner's next post carries over only what no holder
// took. Every field is hostile input to a holder in another process: it
// copies them into the page's own RX description, whose readers bound
// every value anyway.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace xover::nic {

// What kind of RX ring an RxRing describes.
enum class RxRingKind : std::uint32_t { None = 0, E1000Legacy = 1, VirtioSplit = 2 };

// The owner's RX ring as producers need it.
struct RxRing {
    RxRingKind kind = RxRingKind::None;
    std::uint64_t ring_gpa = 0, avail_gpa = 0, used_gpa = 0;  // e1000: RDBA; virtio: desc/avail/used
    std::uint32_t ring_entries = 0, buffer_size = 0, features = 0;  // features: kRx* bits
    bool operator==(const RxRing&) const = default;
};

// One change, as the owner makes it; what it leaves out stays as it is.
struct RxChange {
    std::optional<RxRing> ring{};
    std::optional<std::uint32_t> rdh{};  // the producers' position (a guest RDH write, a ring reset)
    std::optional<bool> enabled{};     // LinkFlag kOwnerRxEnabled
};

// The posted change in the shared page (see above).
struct alignas(64) PendingRxChange {
    // Bits of what is posted (the low half of `state`).
    static constexpr std::uint32_t kRing = 1u << 0, kRdh = 1u << 1, kEnabled = 1u << 2;

    std::atomic<std::uint64_t> state{0};
    std::atomic<std::uint32_t> kind{0};
    std::atomic<std::uint32_t> ring_entries{0};
    std::atomic<std::uint32_t> buffer_size{0};
    std::atomic<std::uint32_t> features{0};
    std::atomic<std::uint64_t> ring_gpa{0};
    std::atomic<std::uint64_t> avail_gpa{0};
    std::atomic<std::uint64_t> used_gpa{0};
    std::atomic<std::uint32_t> rdh{0};
    std::atomic<std::uint32_t> enabled{0};

    static std::uint32_t posted_bits(std::uint64_t s) { return std::uint32_t(s); }
    static bool owner_writing(std::uint64_t s) { return (s >> 32) & 1; }

    // Owner (one thread at a time, its device lock): adds `change` to what
    // is posted, replacing the values it names.
    void post(const RxChange& change);
    // Holder of the producer lock: takes what is posted, if anything and if
    // the owner is not in the middle of a post. Returns false otherwise.
    bool take(RxChange& out);
    // Owner: the position it posted and no holder applied yet, if any.
    std::optional<std::uint32_t> posted_rdh() const;
    void clear();
};

static_assert(sizeof(PendingRxChange) == 64);

}  // namespace xover::nic
