// A statistics counter bumped on one thread and read by --stats on another.
#pragma once

#include <atomic>
#include <cstdint>

namespace xover::net {

class Counter {
public:
    void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

}  // namespace xover::net
