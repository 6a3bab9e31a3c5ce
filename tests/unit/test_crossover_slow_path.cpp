// The slow-path side of the crossover: the counters that keep frames in
// order across the switch to a link, and the broker's slow-path switch.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "xover/crossover/broker_backend.hpp"
#include "xover/nic/slow_path_arrivals.hpp"
#include "test_crossover_util.hpp"
#include "xover/net/backend_spec.hpp"

using namespace xover;
using namespace xover::crossover;

namespace {
std::uint64_t key(std::uint8_t last) {
    const std::uint8_t mac[6] = {0x52, 0x54, 0, 0, 0, last};
    return nic::mac_key(mac);
}
net::MacAddress mac(std::uint8_t last) { return net::MacAddress{{0x52, 0x54, 0, 0, 0, last}}; }
}  // namespace

TEST_CASE("slow-path arrivals count per source and survive eviction of others", "[crossover][order]") {
    nic::SlowPathArrivals a{};
    CHECK(a.frames_from(key(1)) == 0);
    a.count(key(1));
    a.count(key(1));
    a.count(key(2));
    CHECK(a.frames_from(key(1)) == 2);
    CHECK(a.frames_from(key(2)) == 1);
    CHECK(key(0) != 0);
    // More sources than entries: the oldest is evicted and restarts at 0.
    for (unsigned i = 10; i < 10 + nic::SlowPathArrivals::kEntries; ++i) a.count(key(std::uint8_t(i)));
    CHECK(a.frames_from(key(10 + nic::SlowPathArrivals::kEntries - 1)) == 1);
    a.clear();
    CHECK(a.frames_from(key(10)) == 0);
}

TEST_CASE("slow-path arrivals say when a frame waits for RX buffers", "[crossover][order]") {
    nic::SlowPathArrivals a{};
    CHECK_FALSE(a.waiting());
    a.set_waiting(true);
    CHECK(a.waiting());
    a.set_waiting(false);
    CHECK_FALSE(a.waiting());
    a.set_waiting(true);
    a.clear();
    CHECK_FALSE(a.waiting());
}

TEST_CASE("slow-path tally counts frames per destination", "[crossover][order]") {
    nic::SlowPathTally t;
    CHECK(t.frames_to(key(1)) == 0);
    for (int i = 0; i < 5; ++i) t.count(key(1));
    t.count(key(2));
    CHECK(t.frames_to(key(1)) == 5);
    CHECK(t.frames_to(key(2)) == 1);
}

TEST_CASE("slow-path counts start again for a MAC whose link went down", "[crossover][order]") {
    // A sender restarted with the same MAC counts its departures from 0:
    // the receiver's count from its old run must not end the new drain.
    nic::SlowPathArrivals a{};
    nic::SlowPathTally t;
    for (int i = 0; i < 7; ++i) a.count(key(1)), t.count(key(1));
    a.count(key(2));
    t.count(key(2));
    a.forget(key(1));
    t.forget(key(1));
    CHECK(a.frames_from(key(1)) == 0);
    CHECK(t.frames_to(key(1)) == 0);
    CHECK(a.frames_from(key(2)) == 1);  // others keep theirs
    CHECK(t.frames_to(key(2)) == 1);
    a.count(key(1));
    t.count(key(1));
    CHECK(a.frames_from(key(1)) == 1);
    CHECK(t.frames_to(key(1)) == 1);
}

TEST_CASE("switch greeting round-trips and rejects garbage", "[crossover][switch]") {
    SwitchHello h{"vm-a", 3, mac(7)};
    auto bytes = h.encode();
    auto back = SwitchHello::decode(bytes);
    REQUIRE(back);
    CHECK(back->vm == "vm-a");
    CHECK(back->nic == 3);
    CHECK(back->mac == mac(7));
    bytes[0] ^= 1;
    CHECK_FALSE(SwitchHello::decode(bytes));
    CHECK_FALSE(SwitchHello::decode(std::vector<std::uint8_t>(4)));
    CHECK(std::holds_alternative<net::BrokerSpec>(net::parse_backend_spec("broker")));
}

TEST_CASE("the broker's switch forwards unicast by MAC and floods broadcast", "[crossover][switch]") {
    auto dir = std::filesystem::temp_directory_path() / ("xover-switch-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = dir / "s.sock";
    SlowPathSwitch sw(path);
    auto connect = [&](std::uint8_t last) {
        int fd = test::connect_switch_port(path, "vm" + std::to_string(last), mac(last));
        REQUIRE(fd >= 0);
        return fd;
    };
    int a = connect(1), b = connect(2), c = connect(3);
    std::vector<SlowPathSwitch::Seen> seen;
    auto round = [&] {
        std::vector<pollfd> fds;
        sw.add_pollfds(fds);
        ::poll(fds.data(), fds.size(), 100);
        sw.handle(fds, seen);
    };
    for (int i = 0; i < 3; ++i) round();
    CHECK(sw.port_count() == 3);
    std::vector<std::uint8_t> frame(60, 0);
    auto m2 = mac(2), m1 = mac(1);
    std::memcpy(frame.data(), m2.bytes.data(), 6);
    std::memcpy(frame.data() + 6, m1.bytes.data(), 6);
    REQUIRE(::send(a, frame.data(), frame.size(), 0) == 60);
    round();
    std::uint8_t buf[128];
    CHECK(::recv(b, buf, sizeof buf, MSG_DONTWAIT) == 60);
    CHECK(::recv(c, buf, sizeof buf, MSG_DONTWAIT) < 0);  // unicast: only its owner
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].src == m1);
    CHECK(seen[0].dst == m2);
    std::memset(frame.data(), 0xff, 6);
    REQUIRE(::send(a, frame.data(), frame.size(), 0) == 60);
    round();
    CHECK(::recv(b, buf, sizeof buf, MSG_DONTWAIT) == 60);
    CHECK(::recv(c, buf, sizeof buf, MSG_DONTWAIT) == 60);
    CHECK(::recv(a, buf, sizeof buf, MSG_DONTWAIT) < 0);  // never back to the sender
    ::close(a);
    round();
    CHECK(sw.port_count() == 2);
    ::close(b);
    ::close(c);
    std::filesystem::remove_all(dir);
}
