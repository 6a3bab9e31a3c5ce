#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test_net_support.hpp"
#include "xover/error.hpp"
#include "xover/net/backend.hpp"

using xover::net::Backend;
using xover::test::counter;
using xover::test::test_frame;
using xover::test::wait_until;

TEST_CASE("udp backend: a pair on loopback exchanges frames both ways", "[net][udp]") {
    auto pa = xover::test::test_port(0), pb = xover::test::test_port(1);
    xover::test::FakeReceiver rx_a, rx_b;
    xover::test::LoopThread lt;
    auto a = xover::net::make_backend(fmt::format("udp:{}@127.0.0.1:{}", pa, pb));
    auto b = xover::net::make_backend(fmt::format("udp:127.0.0.1:{}@127.0.0.1:{}", pb, pa));
    a->start(lt.loop(), rx_a, [] {});
    b->start(lt.loop(), rx_b, [] {});

    constexpr int kFrames = 200;
    for (int i = 0; i < kFrames; ++i) {
        REQUIRE(a->send(test_frame(i, 60 + i)) == Backend::SendResult::Sent);
        REQUIRE(b->send(test_frame(1000 + i, 1514)) == Backend::SendResult::Sent);
    }
    REQUIRE(wait_until([&] { return rx_b.count() == kFrames && rx_a.count() == kFrames; }));
    auto got = rx_b.frames();
    for (int i = 0; i < kFrames; ++i) CHECK(got[i] == test_frame(i, 60 + i));
    CHECK(rx_a.frames()[7] == test_frame(1007, 1514));
    CHECK(counter(*a, "tx_frames") == kFrames);
    CHECK(counter(*b, "rx_frames") == kFrames);
    CHECK(counter(*b, "rx_bytes") == kFrames * 60 + kFrames * (kFrames - 1) / 2);
    CHECK(a->link_up());
}

TEST_CASE("udp backend: frames the NIC cannot take wait in the socket until it has room", "[net][udp]") {
    auto pa = xover::test::test_port(2), pb = xover::test::test_port(3);
    xover::test::FakeReceiver rx_a, rx_b;
    xover::test::LoopThread lt;
    auto a = xover::net::make_backend(fmt::format("udp:{}@127.0.0.1:{}", pa, pb));
    auto b = xover::net::make_backend(fmt::format("udp:{}@127.0.0.1:{}", pb, pa));
    a->start(lt.loop(), rx_a, [] {});
    b->start(lt.loop(), rx_b, [] {});
    rx_b.accepting = false;
    for (int i = 0; i < 40; ++i) REQUIRE(a->send(test_frame(i)) == Backend::SendResult::Sent);
    // Reading paused at the first refusal: one stall, nothing lost.
    REQUIRE(wait_until([&] { return counter(*b, "rx_stalls") == 1; }));
    CHECK(rx_b.refusals.load() == 1);
    rx_b.accepting = true;
    b->rx_space_available();
    REQUIRE(wait_until([&] { return rx_b.count() == 40; }));
    auto got = rx_b.frames();
    for (int i = 0; i < 40; ++i) CHECK(got[i] == test_frame(i));
    CHECK(counter(*b, "rx_frames") == 40);
}

TEST_CASE("udp backend: sending with no peer listening is not an error", "[net][udp]") {
    auto pa = xover::test::test_port(4), pb = xover::test::test_port(5);
    xover::test::FakeReceiver rx;
    xover::test::LoopThread lt;
    auto a = xover::net::make_backend(fmt::format("udp:{}@127.0.0.1:{}", pa, pb));
    a->start(lt.loop(), rx, [] {});
    for (int i = 0; i < 10; ++i) CHECK(a->send(test_frame(i)) == Backend::SendResult::Sent);
}

TEST_CASE("udp backend: talks to a plain UDP socket (one frame per datagram)", "[net][udp]") {
    auto pa = xover::test::test_port(6), pb = xover::test::test_port(7);
    int peer = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(pb);
    REQUIRE(::bind(peer, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{5, 0};
    ::setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    xover::test::FakeReceiver rx;
    xover::test::LoopThread lt;
    auto a = xover::net::make_backend(fmt::format("udp:{}@127.0.0.1:{}", pa, pb));
    a->start(lt.loop(), rx, [] {});
    auto frame = test_frame(42, 100);
    REQUIRE(a->send(frame) == Backend::SendResult::Sent);
    std::uint8_t buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(peer, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    REQUIRE(n == 100);
    CHECK(std::vector<std::uint8_t>(buf, buf + n) == frame);
    CHECK(ntohs(from.sin_port) == pa);
    // and back, to the address it came from
    REQUIRE(::sendto(peer, buf, 64, 0, reinterpret_cast<sockaddr*>(&from), len) == 64);
    REQUIRE(wait_until([&] { return rx.count() == 1; }));
    CHECK(rx.frames()[0].size() == 64);
    ::close(peer);
}

TEST_CASE("udp backend: a port in use is a setup error naming the spec", "[net][udp]") {
    auto pa = xover::test::test_port(8), pb = xover::test::test_port(9);
    auto spec = fmt::format("udp:127.0.0.1:{}@127.0.0.1:{}", pa, pb);
    auto a = xover::net::make_backend(spec);
    try {
        auto b = xover::net::make_backend(spec);
        FAIL("second bind succeeded");
    } catch (const xover::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("bind"));
        CHECK_THAT(e.what(), Catch::Contains(std::to_string(pa)));
    }
}
