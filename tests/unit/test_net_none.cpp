#include <catch2/catch.hpp>

#include "test_net_support.hpp"
#include "xover/net/backend.hpp"

TEST_CASE("none backend: drops and counts every frame", "[net][none]") {
    auto backend = xover::net::make_backend("none");
    xover::test::LoopThread lt;
    xover::test::FakeReceiver rx;
    backend->start(lt.loop(), rx, [] {});
    auto frame = xover::test::test_frame(1);
    CHECK(backend->send(frame) == xover::net::Backend::SendResult::Dropped);
    CHECK(backend->send(frame) == xover::net::Backend::SendResult::Dropped);
    CHECK(xover::test::counter(*backend, "tx_dropped") == 2);
    CHECK(backend->link_up());
    CHECK(backend->describe() == "none");
    CHECK(rx.count() == 0);
}
