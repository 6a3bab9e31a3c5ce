// A spin lock in memory that several processes share (a NIC's state page,
// its TX handoff, the e1000 window ledger), which knows who holds it.
//
// Why: a process can die (SIGKILL, a crash) in the middle of the short
// section such a lock guards. A plain 0/1 word then stays held for good and
// closes the NIC's RX ring to every other producer. Here the word holds the
// holder's identity, so a waiter can tell "busy" from "abandoned":
//
//   0                    free
//   pid << 32 | gen      held by process `pid`, run number `gen` (a random
//                        32-bit value drawn once per process, never 0)
//
// Rules, for every user of the three locks:
// - Holders keep it for one batch, with no syscalls and no waits inside.
// - A waiter spins briefly (try_lock_briefly: 256 pauses, a few µs). If the
//   holder's process has exited (pidfd), the lock is recovered: a CAS from
//   that holder's word to 0, so two recoverers cannot both win and a new
//   holder is never displaced. A live holder is never displaced, however
//   long it takes (it may be descheduled, or stopped by SIGSTOP): the
//   waiter goes and does something else, or tries again later.
// - What a dead holder left half done (a batch it never published) is what
//   was in flight at the dead process; the next holder works from the
//   published state only.
//
// Limit: a holder's pid that the host hands to a new process before anyone
// checks looks alive; the lock then stays held (frames wait, none are
// dropped) until the link to the dead process goes away. Checks happen at
// the first contention, within milliseconds of the death on a busy link.
#pragma once

#include <atomic>
#include <cstdint>
#include <sys/types.h>

namespace xover::nic {

// This process's lock word (computed once; recomputed in a forked child).
std::uint64_t own_lock_token();
inline pid_t lock_token_pid(std::uint64_t token) { return static_cast<pid_t>(token >> 32); }

// Whether process `pid` has exited (or never existed). A zombie has exited.
// A pid <= 0 names no single process: gone. A few syscalls: slow path only.
bool process_gone(pid_t pid);

struct OwnedLock {
    std::atomic<std::uint64_t> word{0};

    bool try_lock() {
        std::uint64_t expected = 0;
        return word.load(std::memory_order_relaxed) == 0 &&
               word.compare_exchange_strong(expected, own_lock_token(), std::memory_order_acquire,
                                            std::memory_order_relaxed);
    }
    // Only the holder unlocks (a recovered lock's holder is dead).
    void unlock() { word.store(0, std::memory_order_release); }
    // The holder's word (0: free).
    std::uint64_t holder() const { return word.load(std::memory_order_acquire); }
    // Frees the lock if its holder's process is gone. True when the lock is
    // free now (someone else may take it first); false when a live process
    // (or this one) holds it.
    bool recover_if_abandoned();
    // One short spin (no yield), then one recovery attempt: for a caller
    // with another way to get the work done while a live holder works.
    bool try_lock_briefly();
    void clear() { word.store(0, std::memory_order_relaxed); }
};

static_assert(sizeof(OwnedLock) == 8);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

}  // namespace xover::nic
