#include <catch2/catch.hpp>
#include <string>

#include "xover/error.hpp"
#include "xover/net/backend.hpp"
#include "xover/net/backend_spec.hpp"

using namespace xover::net;

TEST_CASE("backend spec: valid specs parse", "[net][spec]") {
    CHECK(std::holds_alternative<NoneSpec>(parse_backend_spec("none")));

    auto tap = std::get<TapSpec>(parse_backend_spec("tap:xovt0"));
    CHECK(tap.ifname == "xovt0");
    CHECK(std::get<TapSpec>(parse_backend_spec("tap:abcdefghijklmno")).ifname.size() == 15);

    auto udp = std::get<UdpSpec>(parse_backend_spec("udp:5555@127.0.0.1:5556"));
    CHECK_FALSE(udp.local_host.has_value());
    CHECK(udp.local_port == 5555);
    CHECK(udp.remote.host == "127.0.0.1");
    CHECK(udp.remote.port == 5556);

    auto udp2 = std::get<UdpSpec>(parse_backend_spec("udp:127.0.0.2:1@localhost:65535"));
    CHECK(udp2.local_host == "127.0.0.2");
    CHECK(udp2.local_port == 1);
    CHECK(udp2.remote.host == "localhost");
    CHECK(udp2.remote.port == 65535);

    auto udp6 = std::get<UdpSpec>(parse_backend_spec("udp:[::1]:7000@[::1]:7001"));
    CHECK(udp6.local_host == "::1");
    CHECK(udp6.remote.host == "::1");

    auto listen = std::get<StreamSpec>(parse_backend_spec("stream-listen:0.0.0.0:1234"));
    CHECK(listen.role == StreamSpec::Role::Listen);
    CHECK(listen.address.host == "0.0.0.0");
    CHECK(listen.address.port == 1234);

    auto connect = std::get<StreamSpec>(parse_backend_spec("stream-connect:[::1]:4321"));
    CHECK(connect.role == StreamSpec::Role::Connect);
    CHECK(connect.address.host == "::1");
    CHECK(connect.address.port == 4321);

    CHECK_NOTHROW(validate_backend_spec("stream-connect:example.com:80"));
}

TEST_CASE("backend spec: malformed specs are refused with a message naming the spec", "[net][spec]") {
    const char* bad[] = {
        "",
        "None",
        "tap",
        "tap:",
        "tap:abcdefghijklmnop",  // 16 characters
        "tap:a/b",
        "tap:a:b",
        "tap:a b",
        "tap:..",
        "udp:",
        "udp:5555",
        "udp:5555@127.0.0.1",
        "udp:5555@:5556",
        "udp:0@127.0.0.1:5556",
        "udp:5555@127.0.0.1:65536",
        "udp:x@127.0.0.1:1",
        "udp:5555@127.0.0.1:1x",
        "udp::5555@127.0.0.1:1",
        "udp:5555@::1:1",
        "udp:5555@[::1:1",
        "udp:5555@[::1]1",
        "stream-listen:",
        "stream-listen:1234",
        "stream-listen::1234",
        "stream-connect:host:",
        "stream-connect:host:-1",
        "stream:host:1",
        "socket:host:1",
    };
    for (const char* spec : bad) {
        INFO("spec: '" << spec << "'");
        try {
            validate_backend_spec(spec);
            FAIL("accepted");
        } catch (const xover::Error& e) {
            CHECK(std::string(e.what()).find(std::string("'") + spec + "'") != std::string::npos);
        }
    }
}

TEST_CASE("backend spec: the message says what is wrong", "[net][spec]") {
    auto message = [](const char* spec) {
        try {
            validate_backend_spec(spec);
        } catch (const xover::Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK_THAT(message("udp:5555@127.0.0.1:99999"), Catch::Contains("out of range"));
    CHECK_THAT(message("tap:abcdefghijklmnop"), Catch::Contains("longer than 15"));
    CHECK_THAT(message("bogus"), Catch::Contains("unknown backend type"));
    CHECK_THAT(message("udp:1@::1:2"), Catch::Contains("brackets"));
}

TEST_CASE("backend spec: to_string gives text that parses back to the same spec", "[net][spec]") {
    for (const char* spec : {"none", "broker", "tap:xovt0", "udp:5555@127.0.0.1:5556", "udp:127.0.0.2:1@localhost:65535",
                             "udp:[::1]:7000@[::1]:7001", "stream-listen:0.0.0.0:1234", "stream-connect:[::1]:4321"}) {
        INFO(spec);
        CHECK(to_string(parse_backend_spec(spec)) == spec);
    }
    CHECK(to_string(BackendSpec{UdpSpec{std::nullopt, 1, HostPort{"fe80::1", 2}}}) == "udp:1@[fe80::1]:2");
}

TEST_CASE("backend spec: make_backend refuses bad specs and unresolvable hosts", "[net][spec]") {
    CHECK_THROWS_AS(make_backend("udp:1"), xover::Error);
    CHECK_THROWS_AS(make_backend("stream-connect:no-such-host.invalid:1"), xover::Error);
}
