#include "stream_clocks.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"

namespace xover::devices {

StreamClocks::StreamClocks(vmm::EventLoop& loop, virtio_snd::VirtioSnd& card, const std::string& name)
    : loop_(loop), card_(card), name_(name) {
    for (auto& timer : timers_) {
        int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0) throw system_error(fmt::format("{}: timerfd_create for a stream clock", name));
        timer = kvm::UniqueFd(fd);
    }
    card_.set_clock([this](unsigned stream, std::chrono::nanoseconds period) { arm(stream, period); });
    for (unsigned s = 0; s < kStreams; ++s)
        loop_.watch(timers_[s].get(), vmm::EventLoop::Interest::Readable, [this, s] { ticked(s); });
}

StreamClocks::~StreamClocks() {
    for (auto& timer : timers_) loop_.unwatch(timer.get(), vmm::EventLoop::Interest::Readable);
    card_.set_clock({});
}

void StreamClocks::append_counters(net::Counters& out) const {
    out.emplace_back("clock_late_periods", late_periods_.load(std::memory_order_relaxed));
    out.emplace_back("clock_skipped_periods", skipped_periods_.load(std::memory_order_relaxed));
}

// Called with the card's lock held: only arms or disarms the timer.
void StreamClocks::arm(unsigned stream, std::chrono::nanoseconds period) {
    if (stream >= kStreams) return;
    itimerspec spec{};
    if (period.count() > 0) {
        auto seconds = std::chrono::duration_cast<std::chrono::seconds>(period);
        spec.it_interval.tv_sec = time_t(seconds.count());
        spec.it_interval.tv_nsec = long((period - seconds).count());
        spec.it_value = spec.it_interval;  // the first period ends one period from now
    }
    if (::timerfd_settime(timers_[stream].get(), 0, &spec, nullptr) != 0)
        spdlog::warn("{}: arming stream {}'s clock: {}", name_, stream, std::strerror(errno));
}

void StreamClocks::ticked(unsigned stream) {
    std::uint64_t periods = 0;
    if (::read(timers_[stream].get(), &periods, sizeof periods) != sizeof periods) return;
    if (periods > 1) late_periods_.fetch_add(periods - 1, std::memory_order_relaxed);
    if (periods > kMaxCatchUp) {
        skipped_periods_.fetch_add(periods - kMaxCatchUp, std::memory_order_relaxed);
        periods = kMaxCatchUp;
    }
    for (std::uint64_t i = 0; i < periods; ++i) card_.period_elapsed(stream);
}

}  // namespace xover::devices
