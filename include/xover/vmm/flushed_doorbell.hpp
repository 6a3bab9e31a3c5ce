// Learns whether a guest driver flushes a doorbell register: whether, after
// each write to it, the driver touches the device again at once. Real
// drivers do (an e1000 driver reads STATUS after RDT so that the posted
// write has reached the NIC). A flushed doorbell can be posted
// (vmm/posted_writes.hpp): the flush's own exit then applies it, one
// userspace exit per doorbell instead of two.
//
// A driver that never flushes (it polls memory and never exits) is never
// posted, so its doorbells are never held back. One that stops flushing is
// caught by the posting watchdog (stale()); learning then starts over, and
// needs twice the streak before posting again.
#pragma once

#include <algorithm>
#include <cstdint>

namespace xover::vmm {

class FlushedDoorbell {
public:
    // How soon after the doorbell the flush must come. Two back-to-back
    // userspace exits take ~60 µs on the slowest host measured; a driver
    // that touches the device again later than this is not flushing.
    static constexpr std::uint64_t kFlushWindowNs = 250'000;
    static constexpr unsigned kFirstStreak = 8;
    static constexpr unsigned kLongestStreak = 1024;

    // One register access of the device, as a driver makes it: `doorbell`
    // if it writes the doorbell. The clock is read only when needed. True:
    // start posting now.
    template <class Clock>
    bool observe(bool doorbell, Clock&& now_ns) {
        if (posting_) return false;
        if (doorbell) {
            written(now_ns());
            return false;
        }
        return waiting() && accessed(now_ns());
    }

    // The doorbell register was written (posting is off: it exited).
    void written(std::uint64_t now_ns) {
        if (posting_) return;
        if (written_at_) streak_ = 0;  // two doorbells, no flush between
        written_at_ = now_ns ? now_ns : 1;
    }
    // Another register of the device was accessed. True: start posting now.
    bool accessed(std::uint64_t now_ns) {
        if (posting_ || !written_at_) return false;
        bool prompt = now_ns >= written_at_ && now_ns - written_at_ <= kFlushWindowNs;
        written_at_ = 0;
        streak_ = prompt ? streak_ + 1 : 0;
        if (streak_ < needed_) return false;
        posting_ = true;
        return true;
    }
    // A posted doorbell waited a watchdog period for its flush: posting
    // has been withdrawn; learn again, more cautiously.
    void stale() {
        posting_ = false;
        written_at_ = 0;
        streak_ = 0;
        needed_ = std::min(needed_ * 2, kLongestStreak);
    }
    // The device was reset: posting stops, what was learned stays.
    void stop() {
        posting_ = false;
        written_at_ = 0;
        streak_ = 0;
    }
    bool posting() const { return posting_; }
    // A doorbell waits for its flush (accessed() will decide).
    bool waiting() const { return written_at_ != 0; }

private:
    std::uint64_t written_at_ = 0;  // an unflushed doorbell's time; 0: none
    unsigned streak_ = 0;           // consecutive promptly flushed doorbells
    unsigned needed_ = kFirstStreak;
    bool posting_ = false;
};

}  // namespace xover::vmm
