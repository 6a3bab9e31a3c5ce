#include "xover/nic/owned_lock.hpp"

#include <cerrno>
#include <poll.h>
#include <pthread.h>
#include <random>
#include <sys/syscall.h>
#include <unistd.h>

namespace xover::nic {
namespace {

std::atomic<std::uint64_t> g_token{0};

void forget_token_in_child() { g_token.store(0, std::memory_order_relaxed); }

std::uint64_t make_token() {
    static const bool registered = [] { return ::pthread_atfork(nullptr, nullptr, forget_token_in_child) == 0; }();
    (void)registered;
    std::uint32_t generation = 0;
    std::random_device random;
    while (generation == 0) generation = random();
    return (std::uint64_t(std::uint32_t(::getpid())) << 32) | generation;
}

}  // namespace

std::uint64_t own_lock_token() {
    std::uint64_t token = g_token.load(std::memory_order_relaxed);
    if (token != 0) return token;
    token = make_token();
    std::uint64_t expected = 0;
    // Threads racing here agree on the first token stored.
    if (!g_token.compare_exchange_strong(expected, token, std::memory_order_relaxed)) token = expected;
    return token;
}

bool process_gone(pid_t pid) {
    if (pid <= 0) return true;
    // kill(pid, 0) would call a zombie alive; a pidfd polls readable as soon
    // as the process has exited, reaped or not.
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return errno == ESRCH;  // EMFILE and the like: assume alive (never displace a live holder)
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, 0);
    ::close(fd);
    return n > 0 && (p.revents & POLLIN);
}

bool OwnedLock::recover_if_abandoned() {
    std::uint64_t holder = word.load(std::memory_order_acquire);
    if (holder == 0) return true;
    if (holder == own_lock_token() || !process_gone(lock_token_pid(holder))) return false;
    // Only the dead holder's word is replaced: a recoverer that lost the
    // race, or a holder that took the lock meanwhile, stays untouched.
    return word.compare_exchange_strong(holder, 0, std::memory_order_acq_rel) || holder == 0;
}

bool OwnedLock::try_lock_briefly() {
    for (unsigned i = 0; i < 256; ++i) {
        if (try_lock()) return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    return recover_if_abandoned() && try_lock();
}

}  // namespace xover::nic
