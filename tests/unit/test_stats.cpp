// A VM's counters as one snapshot (vmm/stats.hpp), and the two texts made
// from it: the --stats lines (counters that are not 0, or all) and the
// --metrics JSON line; then the metrics writer on an event loop.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_net_support.hpp"
#include "xover/error.hpp"
#include "xover/json.hpp"
#include "xover/vmm/metrics_writer.hpp"
#include "xover/vmm/stats.hpp"

using namespace xover;
using namespace xover::vmm;
namespace fs = std::filesystem;

namespace {

StatsSnapshot sample() {
    StatsSnapshot s;
    s.utc_time_ms = 1'800'000'000'123;
    s.groups.push_back({"vm", "", {{"name", std::string("t")}, {"cpus", 2u}, {"memory_bytes", 33554432u}},
                        {{"uptime_ms", 1500}, {"exits", 10}, {"io", 10}, {"mmio", 0}, {"posted_writes", 0}}});
    s.groups.push_back({"vcpu0", "", {}, {{"exits", 10}, {"io", 10}, {"mmio", 0}}});
    s.groups.push_back({"vcpu1", "", {}, {{"exits", 0}, {"io", 0}, {"mmio", 0}}});
    s.groups.push_back({"serial", "pio", {}, {{"reads", 0}, {"writes", 5}}});
    s.groups.push_back({"debug-exit", "pio", {}, {{"reads", 0}, {"writes", 0}}});
    s.groups.push_back({"pio-unclaimed", "", {}, {{"accesses", 0}}});
    s.groups.push_back({"nic0-e1000", "mmio", {}, {{"reads", 7}, {"writes", 0}}});
    s.groups.push_back({"nic0-e1000", "", {{"intx_gsi", 11u}}, {{"resamples", 0}, {"rx_frames", 3}, {"xover_rx_frames", 0}}});
    return s;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// "stats: <name> [bus=B] k=v ..." -> the JSON object it stands for.
std::map<std::string, std::string> fields_of(const std::string& line) {
    std::map<std::string, std::string> out;
    std::istringstream in(line);
    std::string word;
    in >> word >> word;  // "stats:" and the group's name
    while (in >> word) out[word.substr(0, word.find('='))] = word.substr(word.find('=') + 1);
    return out;
}

// A scratch file path, removed at the end.
struct TempPath {
    fs::path path = fs::temp_directory_path() /
                    ("xover-metrics-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    static inline int counter = 0;
    ~TempPath() {
        std::error_code ec;
        fs::remove(path, ec);
    }
    std::vector<std::string> lines() const {
        std::ifstream in(path);
        std::stringstream text;
        text << in.rdbuf();
        return lines_of(text.str());
    }
};

// An event loop on its own thread that the test stops when it wants (a
// metrics writer must go while its loop is stopped).
struct Loop {
    std::unique_ptr<EventLoop> loop = make_event_loop();
    std::thread thread;
    void start() { thread = std::thread([this] { loop->run(); }); }
    void stop() {
        loop->stop();
        if (thread.joinable()) thread.join();
    }
    ~Loop() { stop(); }
};

}  // namespace

TEST_CASE("stats text: the counters that are not 0, and the groups that have any", "[stats]") {
    const auto lines = lines_of(stats_text(sample(), false));
    CHECK(lines == std::vector<std::string>{
                       "stats: vm name=t cpus=2 memory_bytes=33554432 uptime_ms=1500 exits=10 io=10",
                       "stats: vcpu0 exits=10 io=10",
                       "stats: serial bus=pio writes=5",
                       "stats: nic0-e1000 bus=mmio reads=7",
                       "stats: nic0-e1000 intx_gsi=11 rx_frames=3",
                   });
    for (const auto& line : lines) CHECK(line.find("=0 ") == std::string::npos);
}

TEST_CASE("stats text: all, every counter of every group in order", "[stats]") {
    const auto lines = lines_of(stats_text(sample(), true));
    REQUIRE(lines.size() == 8);
    CHECK(lines[0] == "stats: vm name=t cpus=2 memory_bytes=33554432 uptime_ms=1500 exits=10 io=10 mmio=0 posted_writes=0");
    CHECK(lines[2] == "stats: vcpu1 exits=0 io=0 mmio=0");
    CHECK(lines[4] == "stats: debug-exit bus=pio reads=0 writes=0");
    CHECK(lines[5] == "stats: pio-unclaimed accesses=0");
    CHECK(lines[7] == "stats: nic0-e1000 intx_gsi=11 resamples=0 rx_frames=3 xover_rx_frames=0");
}

TEST_CASE("metrics line: one JSON object on one line, a group an object, a bus's devices inside it", "[stats]") {
    const std::string text = metrics_line(sample());
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');
    CHECK(text.find('\n') == text.size() - 1);
    const Json j = Json::parse(text);
    std::vector<std::string> keys;
    for (const auto& [key, value] : j.items()) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"utc_time_ms", "vm", "vcpu0", "vcpu1", "pio", "pio-unclaimed", "mmio",
                                           "nic0-e1000"});
    CHECK(j["utc_time_ms"] == 1'800'000'000'123ull);
    CHECK(j["vm"]["name"] == "t");
    CHECK(j["vm"]["memory_bytes"] == 33554432);
    CHECK(j["vm"]["uptime_ms"] == 1500);
    CHECK(j["vm"]["mmio"] == 0);  // zeros too: every key in every line
    CHECK(j["pio"]["serial"]["writes"] == 5);
    CHECK(j["pio"]["debug-exit"]["reads"] == 0);
    CHECK(j["mmio"]["nic0-e1000"]["reads"] == 7);
    CHECK(j["nic0-e1000"]["intx_gsi"] == 11);
    CHECK(j["nic0-e1000"]["xover_rx_frames"] == 0);
}

TEST_CASE("stats text and metrics line never disagree: one snapshot, the same names and values", "[stats]") {
    const StatsSnapshot s = sample();
    const Json j = Json::parse(metrics_line(s));
    const auto lines = lines_of(stats_text(s, true));
    REQUIRE(lines.size() == s.groups.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const StatsGroup& g = s.groups[i];
        INFO(lines[i]);
        const Json& object = g.bus.empty() ? j[g.name] : j[g.bus][g.name];
        auto fields = fields_of(lines[i]);
        if (!g.bus.empty()) CHECK(fields["bus"] == g.bus);
        fields.erase("bus");
        CHECK(fields.size() == object.size());
        for (const auto& [key, value] : object.items())
            CHECK(fields[key] == (value.is_string() ? value.get<std::string>() : value.dump()));
    }
}

TEST_CASE("metrics writer: a line every interval from the loop, and the last one at exit", "[stats][metrics]") {
    TempPath file;
    std::ofstream(file.path) << "{\"earlier\":1}\n";  // appended to, never truncated
    Loop loop;
    std::atomic<int> ticks{0};
    {
        MetricsWriter writer(file.path, std::chrono::milliseconds(20), *loop.loop, [&] {
            StatsSnapshot s = sample();
            s.utc_time_ms = std::uint64_t(++ticks);
            return metrics_line(s);
        });
        loop.start();
        REQUIRE(test::wait_until([&] { return writer.lines_written() >= 3; }));
        loop.stop();  // the VM stops; its last line comes from the main thread
        StatsSnapshot last = sample();
        last.utc_time_ms = 999;
        writer.write(metrics_line(last));
        CHECK(writer.failed_writes() == 0);
    }
    const auto lines = file.lines();
    REQUIRE(lines.size() >= 5);
    CHECK(lines.front() == "{\"earlier\":1}");
    for (std::size_t i = 1; i < lines.size(); ++i) {
        INFO(lines[i]);
        const Json j = Json::parse(lines[i]);  // throws on anything but one JSON object a line
        CHECK(j.is_object());
        CHECK(j["nic0-e1000"]["rx_frames"] == 3);
        if (i + 1 < lines.size()) CHECK(j["utc_time_ms"] == i);  // in order, none lost
    }
    CHECK(Json::parse(lines.back())["utc_time_ms"] == 999);
}

TEST_CASE("metrics writer: a failing write is counted and logged, the VM goes on", "[stats][metrics]") {
    if (!fs::exists("/dev/full")) return;  // ENOSPC on every write
    Loop loop;
    std::atomic<int> ticks{0};
    MetricsWriter writer("/dev/full", std::chrono::milliseconds(10), *loop.loop, [&] {
        ++ticks;
        return metrics_line(sample());
    });
    writer.write(metrics_line(sample()));
    CHECK(writer.failed_writes() == 1);
    CHECK(writer.lines_written() == 0);
    loop.start();
    REQUIRE(test::wait_until([&] { return ticks.load() >= 3; }));  // ticks keep coming
    loop.stop();
    CHECK(writer.failed_writes() >= 3);
    CHECK(writer.lines_written() == 0);
}

TEST_CASE("metrics writer: a file it cannot open is one clear error at set-up", "[stats][metrics]") {
    Loop loop;
    const std::string path = "/nonexistent-xover-dir/vm.metrics";
    try {
        MetricsWriter writer(path, std::chrono::seconds(60), *loop.loop, [] { return std::string(); });
        FAIL("opened " << path);
    } catch (const Error& e) {
        CHECK(std::string(e.what()) == "--metrics: cannot open \"" + path + "\": No such file or directory");
    }
}
