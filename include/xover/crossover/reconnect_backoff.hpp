// How long a VM waits between attempts to reach a broker that went away:
// 100 ms doubling to 2 s, each delay jittered by up to a fifth either way
// so VMs that lost one broker together do not all knock at once. The cap
// plus its jitter stays below the grace period a restarted broker gives
// the other end of a link (link_adoption.hpp), so two live ends always
// find each other.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace xover::crossover {

class ReconnectBackoff {
public:
    static constexpr std::chrono::milliseconds kFirst{100};
    static constexpr std::chrono::milliseconds kLongest{2000};

    explicit ReconnectBackoff(std::uint32_t seed) : random_(seed ? seed : 1) {}

    // The delay before the next attempt; each call doubles the next one.
    std::chrono::milliseconds next();
    // A connection worked: start again from kFirst next time.
    void reset() { base_ = kFirst; }

private:
    std::chrono::milliseconds base_ = kFirst;
    std::minstd_rand random_;
};

}  // namespace xover::crossover
