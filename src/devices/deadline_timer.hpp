// Private to src/devices: the absolute-time timerfds NICs use (the e1000's
// interrupt delays, the crossover's send retries), fired on the I/O thread.
#pragma once

#include <cstdint>

#include "xover/kvm/unique_fd.hpp"

namespace xover::devices {

std::uint64_t monotonic_ns();

// A non-blocking CLOCK_MONOTONIC timerfd. Throws xover::Error naming `what`.
kvm::UniqueFd make_deadline_timer(const char* what);

// Fires `timer` once at CLOCK_MONOTONIC `deadline_ns`, replacing any
// earlier arming. A deadline of 0 fires at once (a zero itimerspec would
// disarm the timer instead).
void arm_deadline(int timer, std::uint64_t deadline_ns);

}  // namespace xover::devices
