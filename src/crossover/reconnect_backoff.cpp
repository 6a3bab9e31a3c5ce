#include "xover/crossover/reconnect_backoff.hpp"

#include <algorithm>

namespace xover::crossover {

std::chrono::milliseconds ReconnectBackoff::next() {
    const auto base = base_;
    base_ = std::min(base_ * 2, kLongest);
    const std::int64_t spread = base.count() / 5;
    std::uniform_int_distribution<std::int64_t> jitter(-spread, spread);
    return base + std::chrono::milliseconds(jitter(random_));
}

}  // namespace xover::crossover
