// At most one log line per second per call site, so that a misbehaving peer
// or guest cannot flood the log from a hot path.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace xover::net {

class LogLimiter {
public:
    bool allow() {
        using namespace std::chrono;
        std::int64_t now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
        auto next = next_.load(std::memory_order_relaxed);
        if (now < next) return false;
        return next_.compare_exchange_strong(next, now + duration_cast<nanoseconds>(seconds(1)).count(),
                                             std::memory_order_relaxed);
    }

private:
    std::atomic<std::int64_t> next_{0};
};

}  // namespace xover::net
