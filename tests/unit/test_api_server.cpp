// The control API's server and client (api/api_server.hpp, api_client.hpp)
// on a real Unix socket: routing, captures, JSON bodies, and that every
// error, cpp-httplib's own included, is a JSON body with a 4xx status.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "temp_dir.hpp"
#include "xover/api/api_client.hpp"
#include "xover/api/api_server.hpp"
#include "xover/api/link_watch.hpp"

using namespace xover::api;
using Method = ApiServer::Method;

namespace {

struct TempDir : xover::test::TempDir {
    TempDir() : xover::test::TempDir("xover-api") {}
};

Json body_of(const ApiResponse& r) { return Json::parse(r.body); }

}  // namespace

TEST_CASE("API server: routes, captures, bodies and JSON errors", "[api]") {
    TempDir dir;
    const auto socket = dir.path / "vm.t.api.sock";
    ApiServer server(socket);
    std::atomic<int> paused{0};
    server.route(Method::Get, "/vm", [](const ApiRequest&) { return ApiReply{200, Json{{"state", "running"}}}; });
    server.route(Method::Put, "/vm/pause", [&](const ApiRequest&) {
        ++paused;
        return ApiReply{};
    });
    server.route(Method::Put, "/nics/([0-9]+)/carrier", [](const ApiRequest& r) {
        if (!r.body.is_object() || !r.body.contains("state") || !r.body["state"].is_string())
            throw ApiError(400, "the body must be {{\"state\": \"up\" | \"down\"}}");
        return ApiReply{200, Json{{"nic", std::stoi(r.captures.at(0))}, {"state", r.body["state"]}}};
    });
    server.start();

    struct stat st{};
    REQUIRE(::stat(socket.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto r = api_call(socket, "GET", "/vm");
    CHECK(r.status == 200);
    CHECK(body_of(r)["state"] == "running");

    r = api_call(socket, "PUT", "/vm/pause");
    CHECK(r.status == 204);
    CHECK(r.body.empty());
    CHECK(paused == 1);

    r = api_call(socket, "PUT", "/nics/1/carrier", R"({"state": "down"})");
    CHECK(r.status == 200);
    CHECK(body_of(r) == Json{{"nic", 1}, {"state", "down"}});

    SECTION("a handler's refusal") {
        r = api_call(socket, "PUT", "/nics/1/carrier", R"({"state": 3})");
        CHECK(r.status == 400);
        CHECK(body_of(r)["error"].get<std::string>().find("state") != std::string::npos);
    }
    SECTION("a body that is not JSON") {
        r = api_call(socket, "PUT", "/nics/1/carrier", "{nope");
        CHECK(r.status == 400);
        CHECK(body_of(r)["error"] == "the body is not JSON");
    }
    SECTION("an unknown path, and a known path with another method") {
        r = api_call(socket, "GET", "/nothing/here");
        CHECK(r.status == 404);
        CHECK(body_of(r).contains("error"));
        r = api_call(socket, "DELETE", "/vm");
        CHECK(r.status >= 400);
        CHECK(r.status < 500);
        CHECK(body_of(r).contains("error"));
    }
    SECTION("a body over the limit") {
        r = api_call(socket, "PUT", "/nics/1/carrier", "\"" + std::string(100000, 'x') + "\"");
        CHECK(r.status == 413);
    }
    // Still serving after every kind of bad request.
    CHECK(api_call(socket, "GET", "/vm").status == 200);
}

TEST_CASE("API server: a live socket is refused, a stale one replaced, stop is prompt", "[api]") {
    TempDir dir;
    const auto socket = dir.path / "broker.api.sock";
    {
        ApiServer first(socket);
        first.start();
        CHECK_THROWS_WITH(ApiServer(socket), Catch::Contains("in use by another process"));
    }
    CHECK_FALSE(std::filesystem::exists(socket));  // removed at stop

    // A socket file nobody listens on (a dead VM's) is replaced.
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, socket.c_str());
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        ::close(fd);
        REQUIRE(std::filesystem::is_socket(socket));
    }
    ApiServer again(socket);
    again.route(Method::Get, "/status", [](const ApiRequest&) { return ApiReply{200, Json{{"ok", true}}}; });
    again.start();
    CHECK(api_call(socket, "GET", "/status").status == 200);
    again.stop();
    CHECK_THROWS_WITH(api_call(socket, "GET", "/status"), Catch::Contains("no API answers"));
}

TEST_CASE("API server: a path that is not a socket is refused", "[api]") {
    TempDir dir;
    const auto path = dir.path / "file";
    { std::FILE* f = std::fopen(path.c_str(), "w"); std::fclose(f); }
    CHECK_THROWS_WITH(ApiServer(path), Catch::Contains("is not a socket"));
}

TEST_CASE("link watch: keeps the last counters of every link a broker's API showed", "[api]") {
    TempDir dir;
    ApiServer broker_api(broker_api_socket(dir.path / "broker.sock"));
    std::atomic<int> calls{0};
    broker_api.route(Method::Get, "/links", [&](const ApiRequest&) {
        ++calls;
        if (calls > 1) return ApiReply{200, Json::array()};  // the link went down
        return ApiReply{200, Json::parse(R"([{"id": 7, "a": {"vm": "vm-a", "nic": 0}, "b": {"vm": "vm-b", "nic": 1},
            "mode": "copy", "wiring": "static", "a_to_b": {"frames": 100, "bytes": 6400, "dropped": 0},
            "b_to_a": {"frames": 3, "bytes": 192, "dropped": 1}, "origin": "formed"}])")};
    });
    broker_api.start();
    LinkWatch watch({dir.path / "broker.sock", dir.path / "no-broker-here" / "broker.sock"});
    watch.poll();
    watch.poll();  // within the second: no new sample
    CHECK(calls == 1);
    auto lines = watch.summary();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] ==
          "link 7 vm-a#0 <-> vm-b#1 (copy, static): vm-a#0 -> vm-b#1: 100 frames, 6400 bytes, 0 dropped; "
          "vm-b#1 -> vm-a#0: 3 frames, 192 bytes, 1 dropped");
}
