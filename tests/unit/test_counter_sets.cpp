// Counters are declared once (net/counter_set.hpp): a NIC's --stats line is
// exactly its declared sets, in order, each name once and with a meaning,
// and the names scripts and tests grep for are among them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "crossover_sender.hpp"
#include "virtio_fakes.hpp"
#include "xover/net/counter_set.hpp"

using namespace xover;
using namespace xover::test;

namespace {

#define TOY_COUNTERS(X, V)      \
    X(sent, "frames sent")      \
    V(links, "links up now")    \
    X(dropped, "frames dropped")
struct ToyCounters {
    XOVER_COUNTER_SET(TOY_COUNTERS, "toy_", std::uint64_t)
};

std::vector<std::string> names(const net::Counters& counters) {
    std::vector<std::string> out;
    for (const auto& [name, value] : counters) out.push_back(name);
    return out;
}

std::vector<std::string> names(const std::vector<net::CounterInfo>& info) {
    std::vector<std::string> out;
    for (const auto& c : info) out.push_back(c.name);
    return out;
}

std::vector<net::CounterInfo> then(std::vector<net::CounterInfo> a, const std::vector<net::CounterInfo>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// One stats line: every name once, every counter explained.
void check_documented(const std::vector<net::CounterInfo>& line) {
    std::set<std::string> seen;
    for (const auto& c : line) {
        INFO(c.name);
        CHECK(seen.insert(c.name).second);
        CHECK(c.meaning.size() > 5);
    }
}

bool has(const std::vector<net::CounterInfo>& info, const std::string& name) {
    return std::any_of(info.begin(), info.end(), [&](const auto& c) { return c.name == name; });
}

}  // namespace

TEST_CASE("counter set: fields, printing and listing come from one list, in its order") {
    ToyCounters c;
    ++c.sent;
    c.dropped += 3;
    net::Counters out;
    c.append_to(out, {.links = 2});
    CHECK(out == net::Counters{{"toy_sent", 1}, {"toy_links", 2}, {"toy_dropped", 3}});
    auto info = ToyCounters::info();
    REQUIRE(info.size() == 3);
    CHECK(info[1].name == "toy_links");
    CHECK(info[1].meaning == "links up now");
}

TEST_CASE("counter set: an e1000 with a crossover prints its declared counters, then its port's") {
    Sender s;
    const auto line = then(e1000::E1000::counter_info(), crossover::CrossoverPort::counter_info());
    CHECK(names(s.rig.nic.counters()) == names(line));
    check_documented(line);
    for (const char* name : {"tx_frames", "rx_frames", "rx_bytes", "mmio_reads", "tdt_writes", "xover_tx_frames",
                             "xover_rx_frames", "xover_rx_bytes", "xover_bytes_copied", "xover_busy_peer_full",
                             "xover_handoff_parked", "xover_handoff_moved_by_peer", "xover_doorbell_wakeups",
                             "xover_links", "xover_remaps", "xover_rx_peer_filtered", "xover_drains"}) {
        INFO(name);
        CHECK(has(line, name));
    }
}

TEST_CASE("counter set: a virtio-net prints its declared device and transport counters") {
    VirtioNetRig r;
    CHECK(names(r.net.counters()) == names(virtio_net::VirtioNet::counter_info()));
    check_documented(then(virtio_net::VirtioNet::counter_info(), crossover::CrossoverPort::counter_info()));
    for (const char* name : {"tx_frames", "rx_frames", "tx_parked", "notifies", "interrupts"}) {
        INFO(name);
        CHECK(has(virtio_net::VirtioNet::counter_info(), name));
    }
}
