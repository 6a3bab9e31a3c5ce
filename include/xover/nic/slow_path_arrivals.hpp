// Keeping frames in order when a destination moves from the slow path (the
// NIC's backend: a socket, a tap, the broker's switch) to a crossover link.
//
// Frames a sender handed to its backend may still be in flight (in its
// socket, in the receiver's backend waiting for RX buffers) when the link
// comes up. Had the sender written its next frame straight into the
// receiver's ring, that frame would overtake them. So both ends count:
//   - the sender counts, per destination MAC, the unicast frames it handed
//     to its backend (SlowPathTally, private, under the NIC's lock);
//   - the receiver counts, per source MAC, the unicast frames to its own
//     MAC that its backend placed in its RX ring (SlowPathArrivals, in its
//     shared state page, so a linked sender can read it).
// A new link starts "draining": the sender holds frames for that peer (its
// device keeps them pending, lossless backpressure) until the peer's count
// of arrivals from us reaches our count of departures to it — then nothing
// is in flight and the switch cannot reorder. If the count stops moving
// for a while the rest was lost on the way (a lossy path), and the sender
// switches anyway — unless the receiver says it is holding a frame for want
// of RX buffers: then the count stands still because its guest is slow (or
// still booting), nothing was lost, and the sender keeps waiting.
//
// Header-only and atomics-only: it is part of SharedNicState, which device
// models include.
#pragma once

#include <atomic>
#include <cstdint>

namespace xover::nic {

// A MAC as a 64-bit key: the six bytes, plus bit 48 so that no key is 0
// (0 marks a free entry).
inline std::uint64_t mac_key(const std::uint8_t* mac) {
    std::uint64_t k = 0;
    for (int i = 0; i < 6; ++i) k |= std::uint64_t(mac[i]) << (8 * i);
    return k | (1ull << 48);
}

// Written by the NIC's owner only (its I/O thread, where backend frames
// arrive); read by linked producers.
struct alignas(64) SlowPathArrivals {
    static constexpr unsigned kEntries = 16;
    struct Entry {
        std::atomic<std::uint64_t> key{0};
        std::atomic<std::uint64_t> frames{0};
    };
    Entry entries[kEntries];
    std::atomic<std::uint32_t> next_victim{0};
    // Owner: 1 while a backend frame waits for RX buffers (see above).
    std::atomic<std::uint32_t> waiting_for_buffers{0};

    void set_waiting(bool waiting) {
        if (waiting_for_buffers.load(std::memory_order_relaxed) != std::uint32_t(waiting))
            waiting_for_buffers.store(waiting, std::memory_order_release);
    }
    bool waiting() const { return waiting_for_buffers.load(std::memory_order_acquire) != 0; }

    // Owner: one more frame from `src_key` is in our RX ring. An evicted
    // source restarts from 0 (its sender then waits for the timeout once).
    void count(std::uint64_t src_key) {
        for (auto& e : entries) {
            if (e.key.load(std::memory_order_relaxed) == src_key) {
                e.frames.store(e.frames.load(std::memory_order_relaxed) + 1, std::memory_order_release);
                return;
            }
        }
        std::uint32_t victim = next_victim.load(std::memory_order_relaxed);
        for (unsigned i = 0; i < kEntries; ++i) {
            if (entries[i].key.load(std::memory_order_relaxed) == 0) {
                victim = i;
                break;
            }
        }
        next_victim.store((victim + 1) % kEntries, std::memory_order_relaxed);
        Entry& e = entries[victim];
        e.key.store(0, std::memory_order_release);  // readers never pair a new key with an old count
        e.frames.store(1, std::memory_order_release);
        e.key.store(src_key, std::memory_order_release);
    }

    // Owner, when the link to `src_key`'s NIC goes down: a sender that
    // links again may be a new process (restarted with the same MAC) whose
    // tally starts at 0, and a count from its old run would end its drain
    // before its slow-path frames are here. The sender forgets its side
    // too (SlowPathTally::forget). A frame of the new run counted before
    // this only makes the count short: the sender then waits out the
    // stall limit, it never switches early.
    void forget(std::uint64_t src_key) {
        for (auto& e : entries) {
            if (e.key.load(std::memory_order_relaxed) != src_key) continue;
            e.key.store(0, std::memory_order_release);
            e.frames.store(0, std::memory_order_release);
        }
    }

    // Producer: frames from `src_key` that arrived so far (0 if none known).
    std::uint64_t frames_from(std::uint64_t src_key) const {
        for (const auto& e : entries) {
            if (e.key.load(std::memory_order_acquire) != src_key) continue;
            std::uint64_t n = e.frames.load(std::memory_order_acquire);
            if (e.key.load(std::memory_order_acquire) == src_key) return n;
        }
        return 0;
    }

    void clear() {
        for (auto& e : entries) {
            e.key.store(0, std::memory_order_relaxed);
            e.frames.store(0, std::memory_order_relaxed);
        }
        next_victim.store(0, std::memory_order_relaxed);
        waiting_for_buffers.store(0, std::memory_order_relaxed);
    }
};

// The sender's side: unicast frames handed to the backend, per destination.
// Private to one NIC, used under its device lock.
class SlowPathTally {
public:
    static constexpr unsigned kEntries = 16;
    void count(std::uint64_t dst_key) {
        for (auto& e : entries_)
            if (e.key == dst_key) {
                ++e.frames;
                return;
            }
        Entry* slot = &entries_[next_victim_];
        for (auto& e : entries_)
            if (e.key == 0) {
                slot = &e;
                break;
            }
        if (slot == &entries_[next_victim_]) next_victim_ = (next_victim_ + 1) % kEntries;
        *slot = Entry{dst_key, 1};
    }
    // The link to `dst_key` went down (see SlowPathArrivals::forget).
    void forget(std::uint64_t dst_key) {
        for (auto& e : entries_)
            if (e.key == dst_key) e = Entry{};
    }
    std::uint64_t frames_to(std::uint64_t dst_key) const {
        for (const auto& e : entries_)
            if (e.key == dst_key) return e.frames;
        return 0;
    }

private:
    struct Entry {
        std::uint64_t key = 0, frames = 0;
    };
    Entry entries_[kEntries]{};
    unsigned next_victim_ = 0;
};

}  // namespace xover::nic
