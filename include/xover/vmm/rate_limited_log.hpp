// A log line a hostile or buggy guest (or peer) cannot turn into a flood:
// at most `burst` lines per `interval` from one limiter, then silence, then
// one line saying how many were suppressed. One limiter per device, per
// backend direction or per kind of mistake; safe to share between threads
// (a global per call site is fine). Used on error paths only, so the clock
// read costs nothing in the normal case. The one rate limiter of the
// project: warn()/log() format the line, allow() is for callers that log
// it themselves.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <utility>

#include <spdlog/spdlog.h>

namespace xover::vmm {

class RateLimitedLog {
public:
    explicit RateLimitedLog(unsigned burst = 5, std::chrono::nanoseconds interval = std::chrono::seconds(1))
        : burst_(burst), interval_ns_(interval.count()) {}

    template <typename... Args>
    void warn(spdlog::format_string_t<Args...> format, Args&&... args) {
        log(spdlog::level::warn, format, std::forward<Args>(args)...);
    }

    template <typename... Args>
    void log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> format, Args&&... args) {
        if (!allow(level)) return;
        spdlog::log(level, format, std::forward<Args>(args)...);
    }

    // True when this occurrence may be logged (the caller then logs it);
    // the first one after a quiet stretch first says how many were not.
    bool allow(spdlog::level::level_enum level = spdlog::level::warn) {
        if (!admit()) return false;
        if (std::uint64_t n = suppressed_.exchange(0, std::memory_order_relaxed))
            spdlog::log(level, "({} similar messages suppressed)", n);
        return true;
    }

    // Suppressed since the last line that was let through.
    std::uint64_t suppressed() const { return suppressed_.load(std::memory_order_relaxed); }

private:
    bool admit() {
        std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
        std::int64_t start = window_start_.load(std::memory_order_relaxed);
        // One thread opens the next window; a line more or less at the
        // edge between two windows is harmless.
        if (now - start >= interval_ns_ && window_start_.compare_exchange_strong(start, now, std::memory_order_relaxed))
            in_window_.store(0, std::memory_order_relaxed);
        if (in_window_.fetch_add(1, std::memory_order_relaxed) < burst_) return true;
        suppressed_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }

    const unsigned burst_;
    const std::int64_t interval_ns_;
    // The first window opens at the first line (0 is long past).
    std::atomic<std::int64_t> window_start_{std::numeric_limits<std::int64_t>::min() / 2};
    std::atomic<std::uint32_t> in_window_{0};
    std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace xover::vmm
