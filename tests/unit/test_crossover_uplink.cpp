// The broker switch's uplink: the forwarding rules as a table, then the
// switch itself with a socket pair standing in for the tap (one frame per
// read/write, like IFF_TAP|IFF_NO_PI), so no CAP_NET_ADMIN is needed.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "xover/crossover/broker_backend.hpp"
#include "xover/crossover/switch_route.hpp"
#include "xover/crossover/switch_uplink.hpp"
#include "xover/error.hpp"
#include "test_crossover_util.hpp"

using namespace xover;
using namespace xover::crossover;

namespace {

FrameFacts facts(bool from_uplink, bool multicast, bool dst_is_port, bool src_is_port = false) {
    FrameFacts f;
    f.from_uplink = from_uplink;
    f.multicast_dst = multicast;
    f.dst_is_port = dst_is_port;
    f.src_is_port = src_is_port;
    return f;
}

net::MacAddress mac(std::uint8_t last) { return net::MacAddress{{0x52, 0x54, 0, 0, 0x0c, last}}; }
const net::MacAddress kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

std::vector<std::uint8_t> frame(const net::MacAddress& dst, const net::MacAddress& src, std::size_t size = 60) {
    std::vector<std::uint8_t> f(size, 0xab);
    std::memcpy(f.data(), dst.bytes.data(), 6);
    std::memcpy(f.data() + 6, src.bytes.data(), 6);
    return f;
}

// A switch with an uplink whose far end (`host`) the test reads and writes.
struct SwitchWithUplink {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("xover-uplink-" + std::to_string(::getpid()));
    std::filesystem::path path = dir / "s.sock";
    int host = -1;
    std::unique_ptr<SlowPathSwitch> sw;
    std::vector<SlowPathSwitch::Seen> seen;

    SwitchWithUplink() {
        std::filesystem::create_directories(dir);
        int pair[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
        host = pair[1];
        sw = std::make_unique<SlowPathSwitch>(
            path, std::make_unique<SwitchUplink>(kvm::UniqueFd(pair[0]), "tap:test0", ""));
    }
    ~SwitchWithUplink() {
        sw.reset();
        if (host >= 0) ::close(host);
        std::filesystem::remove_all(dir);
    }
    int connect(std::uint8_t last) {
        int fd = test::connect_switch_port(path, "vm" + std::to_string(last), mac(last));
        REQUIRE(fd >= 0);
        return fd;
    }
    void round() {
        std::vector<pollfd> fds;
        sw->add_pollfds(fds);
        ::poll(fds.data(), fds.size(), 100);
        sw->handle(fds, seen);
    }
    const SwitchUplink::Counters& counters() const { return sw->uplink()->counters(); }
    std::uint64_t dropped(SwitchUplink::Drop d) const { return counters().dropped[std::size_t(d)]; }
};

// How many frames are waiting on `fd` (drains them).
int pending(int fd) {
    std::uint8_t buf[2048];
    int n = 0;
    while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++n;
    return n;
}

}  // namespace

TEST_CASE("switch route: from a VM's port", "[crossover][switch][uplink]") {
    // A registered destination: that port only, uplink or not.
    CHECK(route_frame(facts(false, false, true), true) == Route::ToOwner);
    CHECK(route_frame(facts(false, false, true), false) == Route::ToOwner);
    // Unknown unicast: the uplink's, or flooded as always without one.
    CHECK(route_frame(facts(false, false, false), true) == Route::ToUplink);
    CHECK(route_frame(facts(false, false, false), false) == Route::FloodPorts);
    // Broadcast/multicast: every port, and the uplink too.
    CHECK(route_frame(facts(false, true, false), true) == Route::FloodPortsAndUplink);
    CHECK(route_frame(facts(false, true, false), false) == Route::FloodPorts);
}

TEST_CASE("switch route: from the uplink", "[crossover][switch][uplink]") {
    CHECK(route_frame(facts(true, false, true), true) == Route::ToOwner);
    CHECK(route_frame(facts(true, false, false), true) == Route::DropUnknown);
    CHECK(route_frame(facts(true, true, false), true) == Route::FloodPorts);
    // A port's own source MAC coming back from the host side is a loop.
    CHECK(route_frame(facts(true, false, true, true), true) == Route::DropLooped);
    CHECK(route_frame(facts(true, true, false, true), true) == Route::DropLooped);
}

TEST_CASE("uplink spec: only an existing tap", "[crossover][switch][uplink]") {
    auto message = [](const std::string& spec) -> std::string {
        try {
            SwitchUplink::open(spec);
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    };
    CHECK(message("eth0") == "uplink 'eth0': expected tap:IFNAME (the switch's uplink is a tap device)");
    CHECK(message("udp:1@127.0.0.1:2").find("expected tap:IFNAME") != std::string::npos);
    CHECK(message("tap:a/b").find("'a/b' is not a valid interface name") != std::string::npos);
    CHECK(message("tap:").find("is not a valid interface name") != std::string::npos);
    // Refused before /dev/net/tun is even opened: no tap is ever created.
    CHECK(message("tap:xovnosuch9") ==
          "tap:xovnosuch9: no such interface (create it first: ip tuntap add xovnosuch9 mode tap)");
}

TEST_CASE("switch with an uplink: VM frames out, host frames in", "[crossover][switch][uplink]") {
    SwitchWithUplink s;
    int a = s.connect(1), b = s.connect(2);
    for (int i = 0; i < 3; ++i) s.round();
    REQUIRE(s.sw->port_count() == 2);
    const auto host_mac = mac(0x99);

    SECTION("unicast between ports stays off the uplink and feeds the detector") {
        auto f = frame(mac(2), mac(1));
        REQUIRE(::send(a, f.data(), f.size(), 0) == 60);
        s.round();
        CHECK(pending(b) == 1);
        CHECK(pending(s.host) == 0);
        CHECK(s.seen.size() == 1);
    }
    SECTION("unknown unicast goes out the uplink only, not to other ports") {
        auto f = frame(host_mac, mac(1), 100);
        REQUIRE(::send(a, f.data(), f.size(), 0) == 100);
        s.round();
        CHECK(pending(s.host) == 1);
        CHECK(pending(b) == 0);
        CHECK(s.seen.empty());  // nothing for the detector: the host is no crossover peer
        CHECK(s.counters().to_tap_frames == 1);
        CHECK(s.counters().to_tap_bytes == 100);
    }
    SECTION("broadcast from a port: every other port and the uplink") {
        auto f = frame(kBroadcast, mac(1));
        REQUIRE(::send(a, f.data(), f.size(), 0) == 60);
        s.round();
        CHECK(pending(b) == 1);
        CHECK(pending(s.host) == 1);
        CHECK(pending(a) == 0);
    }
    SECTION("from the uplink: unicast to its owner, broadcast to all, the rest dropped by reason") {
        auto to_b = frame(mac(2), host_mac, 80);
        REQUIRE(::send(s.host, to_b.data(), to_b.size(), 0) == 80);
        s.round();
        CHECK(pending(b) == 1);
        CHECK(pending(a) == 0);
        CHECK(s.seen.empty());

        auto bcast = frame(kBroadcast, host_mac);
        REQUIRE(::send(s.host, bcast.data(), bcast.size(), 0) == 60);
        s.round();
        CHECK(pending(a) == 1);
        CHECK(pending(b) == 1);
        CHECK(pending(s.host) == 0);  // never back out the uplink
        CHECK(s.counters().from_tap_frames == 2);
        CHECK(s.counters().from_tap_bytes == 140);

        auto unknown = frame(mac(0x77), host_mac);
        auto looped = frame(kBroadcast, mac(1));
        std::uint8_t runt[10] = {};
        REQUIRE(::send(s.host, unknown.data(), unknown.size(), 0) == 60);
        REQUIRE(::send(s.host, looped.data(), looped.size(), 0) == 60);
        REQUIRE(::send(s.host, runt, sizeof runt, 0) == 10);
        s.round();
        CHECK(pending(a) == 0);
        CHECK(pending(b) == 0);
        CHECK(s.dropped(SwitchUplink::Drop::UnknownDst) == 1);
        CHECK(s.dropped(SwitchUplink::Drop::Looped) == 1);
        CHECK(s.dropped(SwitchUplink::Drop::Runt) == 1);
        CHECK(s.counters().from_tap_frames == 2);
    }
    SECTION("the uplink failing is counted; the switch keeps switching") {
        ::close(s.host);  // reads now end, writes fail: a deleted tap
        s.host = -1;
        s.round();
        CHECK_FALSE(s.sw->uplink()->receiving());
        CHECK(s.counters().read_errors == 1);
        auto out = frame(host_mac, mac(1));
        REQUIRE(::send(a, out.data(), out.size(), 0) == 60);
        auto to_b = frame(mac(2), mac(1));
        REQUIRE(::send(a, to_b.data(), to_b.size(), 0) == 60);
        s.round();
        s.round();
        CHECK(s.dropped(SwitchUplink::Drop::TapError) == 1);
        CHECK(pending(b) == 1);
        CHECK(json_line(s.sw->uplink()->status_json()).find("\"receiving\":false") != std::string::npos);
    }
    ::close(a);
    ::close(b);
}

TEST_CASE("uplink status names the port and every drop reason", "[crossover][switch][uplink]") {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
    SwitchUplink up(kvm::UniqueFd(pair[0]), "tap:x\"0", "");
    up.count_drop(SwitchUplink::Drop::PortFull);
    const std::string json = json_line(up.status_json());
    CHECK(json.rfind("{\"port\":\"tap:x\\\"0\",\"link\":\"-\",\"receiving\":true,", 0) == 0);
    for (std::size_t i = 0; i < std::size_t(SwitchUplink::Drop::kCount); ++i)
        CHECK(json.find(std::string("\"") + SwitchUplink::name(SwitchUplink::Drop(i)) + "\":") != std::string::npos);
    CHECK(json.find("\"port_full\":1") != std::string::npos);
    CHECK(up.status_text().find("Uplink: tap:x\"0 (link -)") == 0);
    ::close(pair[1]);
}
