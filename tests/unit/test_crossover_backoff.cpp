// ReconnectBackoff: how often a VM knocks on a broker that went away.
#include <catch2/catch.hpp>

#include "xover/crossover/link_adoption.hpp"
#include "xover/crossover/reconnect_backoff.hpp"

using namespace xover::crossover;
using namespace std::chrono_literals;

TEST_CASE("backoff doubles from 100 ms to 2 s, jittered by a fifth, and starts over after a success",
          "[crossover][backoff]") {
    ReconnectBackoff backoff(GENERATE(1u, 42u, 0xdeadbeefu));
    std::chrono::milliseconds expected = ReconnectBackoff::kFirst;
    for (int attempt = 0; attempt < 12; ++attempt) {
        auto delay = backoff.next();
        CHECK(delay >= expected - expected / 5);
        CHECK(delay <= expected + expected / 5);
        expected = std::min(expected * 2, ReconnectBackoff::kLongest);
    }
    backoff.reset();
    CHECK(backoff.next() <= ReconnectBackoff::kFirst + ReconnectBackoff::kFirst / 5);
    // The longest wait stays inside the window a restarted broker gives
    // the other end of a link.
    CHECK(ReconnectBackoff::kLongest + ReconnectBackoff::kLongest / 5 < kAdoptionGrace);
}
