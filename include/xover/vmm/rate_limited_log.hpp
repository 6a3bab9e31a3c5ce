// A log line a hostile or buggy guest cannot turn into a flood: at most
// `burst` messages per `interval`, then silence, then one line saying how
// many were suppressed. One instance per device (or per kind of mistake),
// used only on error paths, so the clock read costs nothing in the normal
// case. Not thread-safe by itself: call it under the owning device's lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include <spdlog/spdlog.h>

namespace xover::vmm {

class RateLimitedLog {
public:
    explicit RateLimitedLog(unsigned burst = 5, std::chrono::nanoseconds interval = std::chrono::seconds(1))
        : burst_(burst), interval_(interval) {}

    template <typename... Args>
    void warn(spdlog::format_string_t<Args...> format, Args&&... args) {
        log(spdlog::level::warn, format, std::forward<Args>(args)...);
    }

    template <typename... Args>
    void log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> format, Args&&... args) {
        if (!admit()) return;
        if (suppressed_ != 0) {
            spdlog::log(level, "({} similar messages suppressed)", suppressed_);
            suppressed_ = 0;
        }
        spdlog::log(level, format, std::forward<Args>(args)...);
    }

    std::uint64_t suppressed() const { return suppressed_; }

private:
    bool admit() {
        auto now = std::chrono::steady_clock::now();
        if (now - window_start_ >= interval_) {
            window_start_ = now;
            in_window_ = 0;
        }
        if (in_window_ < burst_) {
            ++in_window_;
            return true;
        }
        ++suppressed_;
        return false;
    }

    unsigned burst_;
    std::chrono::nanoseconds interval_;
    std::chrono::steady_clock::time_point window_start_{};
    unsigned in_window_ = 0;
    std::uint64_t suppressed_ = 0;
};

}  // namespace xover::vmm
