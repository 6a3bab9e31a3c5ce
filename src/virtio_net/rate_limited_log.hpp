// Guest mistakes are logged, but a hostile guest must not be able to flood
// the log: the first few occurrences are logged, then one in every 4096.
// No clock, no allocation: an atomic counter per call site.
#pragma once

#include <atomic>
#include <cstdint>

namespace xover::virtio_net {

class RateLimitedLog {
public:
    // True when this occurrence should be logged.
    bool allow() {
        std::uint64_t n = count_.fetch_add(1, std::memory_order_relaxed);
        return n < 8 || (n & 4095) == 0;
    }
    std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> count_{0};
};

}  // namespace xover::virtio_net
