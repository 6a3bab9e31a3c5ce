// An eventfd(2) counter: the doorbell used for irqfd, ioeventfd, irqfd
// resampling and waking threads. Tiny on purpose; anyone may use it.
#pragma once

#include <sys/eventfd.h>

#include <cstdint>

#include "xover/kvm/unique_fd.hpp"

namespace xover::kvm {

class EventFd {
public:
    // flags: EFD_NONBLOCK, EFD_CLOEXEC, EFD_SEMAPHORE (EFD_CLOEXEC is always added).
    static EventFd create(int flags = EFD_NONBLOCK);
    // Takes ownership of an eventfd received from elsewhere (SCM_RIGHTS).
    static EventFd adopt(int fd) { return EventFd(UniqueFd(fd)); }

    EventFd() = default;
    int fd() const { return fd_.get(); }
    explicit operator bool() const { return bool(fd_); }

    // Adds `value` to the counter. Never throws: returns false on failure
    // (the only realistic one is a full counter, which still wakes readers).
    bool signal(std::uint64_t value = 1) const noexcept;
    // Reads and resets the counter; returns 0 if it was zero (non-blocking fd).
    std::uint64_t drain() const noexcept;

private:
    explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

}  // namespace xover::kvm
