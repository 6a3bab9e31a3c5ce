#include "deadline_timer.hpp"

#include <sys/timerfd.h>
#include <time.h>

#include "xover/error.hpp"

namespace xover::devices {

namespace {
constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;
}

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * kNsPerSecond + std::uint64_t(ts.tv_nsec);
}

kvm::UniqueFd make_deadline_timer(const char* what) {
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) throw system_error(fmt::format("timerfd_create for {}", what));
    return kvm::UniqueFd(fd);
}

void arm_deadline(int timer, std::uint64_t deadline_ns) {
    itimerspec spec{};
    spec.it_value.tv_sec = time_t(deadline_ns / kNsPerSecond);
    spec.it_value.tv_nsec = long(deadline_ns % kNsPerSecond);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    ::timerfd_settime(timer, TFD_TIMER_ABSTIME, &spec, nullptr);
}

}  // namespace xover::devices
