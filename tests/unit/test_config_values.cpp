// Single values: sizes, MACs, default MACs, --nic specs.
#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "error_of.hpp"
#include "xover/error.hpp"
#include "xover/net/backend_spec.hpp"
#include "xover/vmm/config_parser.hpp"

using namespace xover::vmm;
using xover::test::error_of;

namespace {

std::string mac_str(const xover::net::MacAddress& m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m.bytes[0], m.bytes[1], m.bytes[2], m.bytes[3],
                  m.bytes[4], m.bytes[5]);
    return buf;
}

}  // namespace

TEST_CASE("parse_size accepts binary suffixes and plain bytes", "[config]") {
    CHECK(parse_size("4096") == 4096);
    CHECK(parse_size("512K") == 512ull << 10);
    CHECK(parse_size("64M") == 64ull << 20);
    CHECK(parse_size("64m") == 64ull << 20);
    CHECK(parse_size("1G") == 1ull << 30);
    CHECK(parse_size("2T") == 2ull << 40);
    CHECK(parse_size("128MiB") == 128ull << 20);
    CHECK(parse_size("1GB") == 1ull << 30);
    CHECK(parse_size("100B") == 100);
}

TEST_CASE("parse_size refuses what is not a size", "[config]") {
    CHECK(error_of([] { parse_size("12Q"); }) == R"("12Q" is not a size (use 64M, 1G))");
    for (const char* bad : {"", "M", "-1", "1.5G", "1 G", "0x10", "G1"})
        CHECK_THAT(error_of([&] { parse_size(bad); }), Catch::Contains("is not a size"));
    CHECK_THAT(error_of([] { parse_size("99999999999999T"); }), Catch::Contains("too large"));
    CHECK_THAT(error_of([] { parse_size("99999999999999999999999"); }), Catch::Contains("is not a size"));
}

TEST_CASE("parse_mac", "[config]") {
    CHECK(mac_str(parse_mac("52:54:00:AB:cd:0F")) == "52:54:00:ab:cd:0f");
    CHECK(error_of([] { parse_mac("52:54:00:12:34"); }) ==
          R"("52:54:00:12:34" is not a MAC address (use 52:54:00:12:34:56))");
    CHECK_THAT(error_of([] { parse_mac("52-54-00-12-34-56"); }), Catch::Contains("is not a MAC address"));
    CHECK_THAT(error_of([] { parse_mac("52:54:00:12:34:5g"); }), Catch::Contains("is not a MAC address"));
    CHECK_THAT(error_of([] { parse_mac("01:00:5e:00:00:01"); }), Catch::Contains("multicast"));
    CHECK_THAT(error_of([] { parse_mac("ff:ff:ff:ff:ff:ff"); }), Catch::Contains("multicast"));
    CHECK_THAT(error_of([] { parse_mac("00:00:00:00:00:00"); }), Catch::Contains("not a usable MAC"));
}

TEST_CASE("default MAC is 52:54:00 + hash of (name, index), stable", "[config]") {
    const auto a0 = default_mac("vm-a", 0);
    CHECK(mac_str(a0).substr(0, 9) == "52:54:00:");
    CHECK(default_mac("vm-a", 0) == a0);
    CHECK(default_mac("vm-a", 1) != a0);
    CHECK(default_mac("vm-b", 0) != a0);
    // Pinned: the documented FNV-1a of "vm-a/0"; changing the scheme changes
    // every guest's MAC, so it must be deliberate.
    std::uint32_t h = 2166136261u;
    for (unsigned char c : std::string("vm-a/0")) h = (h ^ c) * 16777619u;
    CHECK(a0.bytes[3] == std::uint8_t(h >> 16));
    CHECK(a0.bytes[4] == std::uint8_t(h >> 8));
    CHECK(a0.bytes[5] == std::uint8_t(h));
}

TEST_CASE("parse_nic_spec full form", "[config]") {
    const auto nic =
        parse_nic_spec("virtio-net,mac=52:54:00:12:34:56,backend=udp:5000@127.0.0.1:5001,crossover=vm-b+vm-c,mode=window");
    CHECK(nic.model == NicModel::VirtioNet);
    REQUIRE(nic.mac);
    CHECK(mac_str(*nic.mac) == "52:54:00:12:34:56");
    CHECK(to_string(nic.backend) == "udp:5000@127.0.0.1:5001");
    CHECK(nic.crossover == std::vector<std::string>{"vm-b", "vm-c"});
    CHECK(nic.crossover_mode == CrossoverMode::Window);
    CHECK_FALSE(nic.ioeventfd);  // unset: uses_ioeventfd() decides
    CHECK_FALSE(uses_ioeventfd(nic));  // a crossover NIC's notifies stay vCPU exits
    CHECK(uses_ioeventfd(parse_nic_spec("virtio-net,backend=udp:5000@127.0.0.1:5001")));
    CHECK(parse_nic_spec("virtio-net,ioeventfd=off").ioeventfd == false);
    CHECK_FALSE(uses_ioeventfd(parse_nic_spec("virtio-net,ioeventfd=off")));
    CHECK(uses_ioeventfd(parse_nic_spec("ioeventfd=on,model=virtio-net,crossover=vm-b")));

    const auto defaults = parse_nic_spec("e1000");
    CHECK(defaults.model == NicModel::E1000);
    CHECK_FALSE(defaults.mac);
    CHECK(to_string(defaults.backend) == "none");
    CHECK(defaults.crossover.empty());
    CHECK(defaults.crossover_mode == CrossoverMode::Copy);

    CHECK(parse_nic_spec("model=virtio-net,crossover=auto").crossover == std::vector<std::string>{"auto"});
    CHECK(to_string(parse_nic_spec("backend=tap:xtap0").backend) == "tap:xtap0");
    CHECK(to_string(parse_nic_spec("backend=stream-listen:[::1]:5555").backend) == "stream-listen:[::1]:5555");
    CHECK(to_string(parse_nic_spec("backend=udp:127.0.0.1:5000@10.0.0.2:5001").backend) == "udp:127.0.0.1:5000@10.0.0.2:5001");
}

TEST_CASE("parse_nic_spec errors name the flag, key and value", "[config]") {
    CHECK(error_of([] { parse_nic_spec("rtl8139", "--nic \"rtl8139\""); }) ==
          R"(--nic "rtl8139": "rtl8139" is not a NIC model (use e1000 or virtio-net))");
    CHECK(error_of([] { parse_nic_spec("e1000,mac=zz"); }) ==
          R"(--nic: mac: "zz" is not a MAC address (use 52:54:00:12:34:56))");
    CHECK_THAT(error_of([] { parse_nic_spec("e1000,mode=fast"); }),
               Catch::Contains(R"("fast" is not a crossover mode (use copy or window))"));
    CHECK_THAT(error_of([] { parse_nic_spec("e1000,speed=10"); }), Catch::Contains(R"(unknown key "speed")"));
    CHECK_THAT(error_of([] { parse_nic_spec("virtio-net,ioeventfd=1"); }),
               Catch::Contains(R"(ioeventfd: "1" is not on or off)"));
    CHECK_THAT(error_of([] { parse_nic_spec("ioeventfd=off,model=e1000"); }),
               Catch::Contains("ioeventfd=off is for virtio-net NICs"));
    CHECK_THAT(error_of([] { parse_nic_spec("e1000,virtio-net"); }), Catch::Contains("is not key=value"));
    CHECK_THAT(error_of([] { parse_nic_spec("e1000,crossover=auto+vm-b"); }),
               Catch::Contains("\"auto\" cannot be combined"));
    CHECK_THAT(error_of([] { parse_nic_spec("e1000,crossover=bad name"); }),
               Catch::Contains("is not a valid VM name"));
    for (const char* bad : {"backend=udp:5000", "backend=udp:x@h:1", "backend=udp:5000@host", "backend=tap:",
                            "backend=tap:waytoolonginterfacename", "backend=socket:1", "backend=",
                            "backend=stream-connect:host:0", "backend=stream-connect::80", "backend=udp:1@::1:80"}) {
        INFO(bad);
        CHECK_THAT(error_of([&] { parse_nic_spec(std::string("e1000,") + bad); }),
                   Catch::Contains("is not a valid backend"));
    }
}

TEST_CASE("NIC model and crossover mode names", "[config]") {
    CHECK(to_string(NicModel::E1000) == "e1000");
    CHECK(to_string(NicModel::VirtioNet) == "virtio-net");
    CHECK(parse_nic_model("virtio-net") == NicModel::VirtioNet);
    CHECK_FALSE(parse_nic_model("rtl8139"));
    CHECK(to_string(CrossoverMode::Window) == "window");
    CHECK(parse_crossover_mode("copy") == CrossoverMode::Copy);
    CHECK_FALSE(parse_crossover_mode("Copy"));
}

TEST_CASE("a backend the net parser refuses is reported with its origin", "[config]") {
    CHECK_THAT(error_of([] { parse_nic_spec("e1000,backend=tap:.."); }),
               Catch::StartsWith("--nic: backend: invalid network backend 'tap:..': '..' is not a valid interface name"));
    CHECK(std::holds_alternative<xover::net::TapSpec>(parse_nic_spec("e1000,backend=tap:fine").backend));
}

TEST_CASE("parse_nic_spec: a vhost-user back-end, client or server", "[config][vhost-user]") {
    auto client = parse_nic_spec("virtio-net,backend=vhost-user:/run/vu0.sock,mac=52:54:00:12:34:56");
    REQUIRE(std::holds_alternative<xover::net::VhostUserSpec>(client.backend));
    CHECK(std::get<xover::net::VhostUserSpec>(client.backend).path == "/run/vu0.sock");
    CHECK_FALSE(std::get<xover::net::VhostUserSpec>(client.backend).server);
    // On the command line the comma of ",server" splits the item: it is put back.
    auto server = parse_nic_spec("virtio-net,backend=vhost-user:/run/vu1.sock,server,mac=52:54:00:12:34:57");
    REQUIRE(std::holds_alternative<xover::net::VhostUserSpec>(server.backend));
    CHECK(std::get<xover::net::VhostUserSpec>(server.backend).server);
    CHECK(xover::net::to_string(server.backend) == "vhost-user:/run/vu1.sock,server");
    auto parsed = xover::net::parse_backend_spec("vhost-user:/a,server");
    CHECK(std::get<xover::net::VhostUserSpec>(parsed).path == "/a");
    CHECK_THROWS_WITH(parse_nic_spec("virtio-net,backend=vhost-user:"), Catch::Contains("needs the back-end's socket path"));
    CHECK_THROWS_WITH(parse_nic_spec("virtio-net,server"), Catch::Contains("is not key=value"));
}
