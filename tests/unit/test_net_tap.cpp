// Needs CAP_NET_ADMIN (creating the tap) and CAP_NET_RAW (the packet socket
// standing in for the host side); skipped without them.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "test_net_support.hpp"
#include "xover/error.hpp"
#include "xover/net/backend.hpp"

using xover::net::Backend;
using xover::test::wait_until;

namespace {

constexpr std::uint16_t kEtherType = 0x88b5;  // IEEE local experimental

std::vector<std::uint8_t> experimental_frame(std::uint8_t tag) {
    std::vector<std::uint8_t> f(60, tag);
    const std::uint8_t dst[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01}, src[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x02};
    std::copy(dst, dst + 6, f.begin());
    std::copy(src, src + 6, f.begin() + 6);
    f[12] = kEtherType >> 8;
    f[13] = kEtherType & 0xff;
    return f;
}

}  // namespace

TEST_CASE("tap backend: frames cross between the tap and the host interface", "[net][tap]") {
    // The loop and the receiver outlive the backend (declared first).
    xover::test::FakeReceiver rx;
    xover::test::LoopThread lt;
    std::unique_ptr<Backend> tap;
    try {
        tap = xover::net::make_backend("tap:xovt0");
    } catch (const xover::Error& e) {
        WARN("skipping: " << e.what());
        return;
    }
    CHECK(tap->describe() == "tap:xovt0");
    CHECK(tap->link_up());

    int host = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kEtherType));
    if (host < 0) {
        WARN("skipping the traffic part: no packet socket");
        return;
    }
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(kEtherType);
    addr.sll_ifindex = int(if_nametoindex("xovt0"));
    REQUIRE(addr.sll_ifindex != 0);
    REQUIRE(::bind(host, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{5, 0};
    ::setsockopt(host, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    tap->start(lt.loop(), rx, [] {});

    // guest → host: what the NIC sends comes out of the interface.
    auto out = experimental_frame(0xaa);
    REQUIRE(tap->send(out) == Backend::SendResult::Sent);
    std::uint8_t buf[2048];
    ssize_t n = ::recv(host, buf, sizeof buf, 0);
    REQUIRE(n == ssize_t(out.size()));
    CHECK(std::vector<std::uint8_t>(buf, buf + n) == out);

    // host → guest: what the host sends on the interface reaches the NIC
    // (other host chatter, e.g. IPv6 solicitations, may arrive too).
    auto in = experimental_frame(0xbb);
    REQUIRE(::send(host, in.data(), in.size(), 0) == ssize_t(in.size()));
    auto has_in = [&] {
        auto frames = rx.frames();
        return std::find(frames.begin(), frames.end(), in) != frames.end();
    };
    REQUIRE(wait_until(has_in));
    CHECK(xover::test::counter(*tap, "tx_frames") == 1);
    CHECK(xover::test::counter(*tap, "rx_frames") >= 1);

    // A NIC with no room: lossy, counted.
    rx.accepting = false;
    REQUIRE(::send(host, in.data(), in.size(), 0) == ssize_t(in.size()));
    REQUIRE(wait_until([&] { return xover::test::counter(*tap, "rx_dropped") >= 1; }));
    ::close(host);
}

TEST_CASE("tap backend: an oversized frame is dropped and counted", "[net][tap]") {
    std::unique_ptr<Backend> tap;
    try {
        tap = xover::net::make_backend("tap:xovt1");
    } catch (const xover::Error& e) {
        WARN("skipping: " << e.what());
        return;
    }
    std::vector<std::uint8_t> huge(70000);
    CHECK(tap->send(huge) == Backend::SendResult::Dropped);
    CHECK(xover::test::counter(*tap, "tx_dropped") == 1);
}
