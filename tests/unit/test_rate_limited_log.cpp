// The project's one log rate limiter (vmm/rate_limited_log.hpp): a burst
// per interval, then silence with a count, shared safely between threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "xover/vmm/rate_limited_log.hpp"

using namespace xover;

TEST_CASE("rate-limited log: a burst per interval, then a count of what was suppressed") {
    vmm::RateLimitedLog limit{2, std::chrono::hours(1)};
    CHECK(limit.allow());
    CHECK(limit.allow());
    for (int i = 0; i < 5; ++i) CHECK_FALSE(limit.allow());
    CHECK(limit.suppressed() == 5);

    vmm::RateLimitedLog quick{1, std::chrono::milliseconds(20)};
    CHECK(quick.allow());
    CHECK_FALSE(quick.allow());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the next interval
    CHECK(quick.allow());  // and it says how many it held back
    CHECK(quick.suppressed() == 0);
}

TEST_CASE("rate-limited log: threads sharing one limiter get the burst between them") {
    vmm::RateLimitedLog limit{8, std::chrono::hours(1)};
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) admitted += limit.allow();
        });
    for (auto& t : threads) t.join();
    CHECK(admitted.load() == 8);
    CHECK(limit.suppressed() == 4 * 10000 - 8);
}
