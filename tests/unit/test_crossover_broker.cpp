// The broker end to end, in-process: a broker thread on a temporary socket,
// VMs played by BrokerClients with real memfds and eventfds.
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "broker_harness.hpp"
#include "temp_dir.hpp"
#include "xover/vmm/layout.hpp"
#include "test_crossover_util.hpp"
#include "test_net_support.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/crossover/broker_state.hpp"
#include "xover/crossover/client.hpp"
#include "xover/crossover/detector.hpp"
#include "xover/crossover/vm_agent.hpp"

using namespace xover::crossover;
using namespace xover::crossover::test;
using xover::test::wait_until;

namespace {

struct TempDir : xover::test::TempDir {
    TempDir() : xover::test::TempDir("xover-broker-test") {}
};

struct Recorder : LinkHandler {
    std::vector<std::shared_ptr<PeerLink>> up;
    std::vector<std::uint64_t> down;
    bool lost = false;
    void link_up(std::shared_ptr<PeerLink> link) override { up.push_back(std::move(link)); }
    void link_down(std::uint64_t id, std::uint32_t) override {
        down.push_back(id);
        std::erase_if(up, [id](const auto& l) { return l->id == id; });
    }
    void broker_lost() override { lost = true; }
};

// A fake VM: one NIC, a client, a handler.
struct FakeVm {
    std::string name;
    FakeNic nic;
    BrokerClient client;
    Recorder links;

    FakeVm(const std::filesystem::path& sock, std::string vm_name, std::uint8_t mac_last,
           std::vector<std::string> peers, bool auto_peer = false, LinkMode mode = LinkMode::Copy)
        : name(std::move(vm_name)), nic(name), client(connect_broker(sock)) {
        Register reg{name, "", {}};
        reg.nics.push_back(nic.registration(0, mac(mac_last), std::move(peers), auto_peer, mode));
        client.register_vm(std::move(reg), links);
    }

    // Runs the VM's I/O loop until `done` holds (or 5 s pass).
    bool pump_until(const std::function<bool()>& done) { return test::pump_until(client, links, done); }
    void pump_briefly() { test::pump_briefly(client, links); }
};

std::uint8_t* own_ram(FakeVm& vm, SharedMapping& keep) {
    keep = SharedMapping(vm.nic.ram.get(), vm.nic.ram_size);
    return keep.data();
}

bool eventfd_fired(int fd) {
    std::uint64_t v = 0;
    return ::read(fd, &v, sizeof v) == sizeof v && v > 0;
}

}  // namespace

TEST_CASE("broker: static pair links, shares memory, tears down and re-links", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});

    FakeVm a(sock, "vm-a", 1, {"vm-b"});
    auto b1 = std::make_unique<FakeVm>(sock, "vm-b", 2, std::vector<std::string>{"vm-a"});
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(b1->pump_until([&] { return b1->links.up.size() == 1; }));

    PeerLink& ab = *a.links.up[0];
    PeerLink& ba = *b1->links.up[0];
    CHECK(ab.id == ba.id);
    CHECK(ab.peer_vm == "vm-b");
    CHECK(ab.peer_mac == mac(2));
    CHECK(ab.peer_model == "e1000");
    CHECK(ab.mode == LinkMode::Copy);
    CHECK_FALSE(ab.automatic);
    CHECK(ba.peer_vm == "vm-a");

    // B's guest writes its RAM; A reads it through the peer mapping, and the other way round.
    SharedMapping b_ram_keep, a_ram_keep;
    std::memcpy(own_ram(*b1, b_ram_keep) + 0x2000, "from b", 6);
    auto seen = ab.peer_memory.span(0x2000, 6);
    REQUIRE(seen.size() == 6);
    CHECK(std::memcmp(seen.data(), "from b", 6) == 0);
    std::memcpy(ba.peer_memory.span(0x3000, 6).data(), "from a", 6);
    CHECK(std::memcmp(own_ram(a, a_ram_keep) + 0x3000, "from a", 6) == 0);
    CHECK(ab.peer_memory.span(a.nic.ram_size, 1).empty());  // out of the peer's RAM

    // A produces into B's state page and interrupts B.
    b1->nic.state.state().set_ims(0x80);
    CHECK(ab.peer_state().raise(0x80));
    ab.interrupt_peer();
    CHECK(eventfd_fired(b1->nic.irq.get()));
    CHECK(b1->nic.state.state().take_icr() == 0x80);
    ba.ring_peer_doorbell();
    CHECK(eventfd_fired(a.nic.doorbell.get()));

    // Per-link counters reach `xover status`.
    ab.counters().frames.fetch_add(5);
    ab.counters().bytes.fetch_add(300);
    std::string json = request_status(sock, true);
    CHECK_THAT(json, Catch::Contains("\"a_to_b\":{\"frames\":5,\"bytes\":300"));
    CHECK_THAT(json, Catch::Contains("\"name\":\"vm-b\""));
    std::string table = request_status(sock, false);
    CHECK_THAT(table, Catch::Contains("VMs: 2"));
    CHECK_THAT(table, Catch::Contains("Links: 1"));
    CHECK_THAT(table, Catch::Contains("vm-a#0"));

    // B dies (its socket hangs up, as on SIGKILL): A is told.
    ba.counters().frames.fetch_add(7);  // B placed 7 frames in A's ring
    std::uint64_t old_id = ab.id;
    b1.reset();
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    CHECK(a.links.down[0] == old_id);
    CHECK(a.links.up.empty());

    // B restarts under the same name and MAC: linked again.
    FakeVm b2(sock, "vm-b", 2, {"vm-a"});
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    CHECK(a.links.up[0]->id != old_id);
    CHECK(a.links.up[0]->producer_slot < xover::nic::kMaxProducerSlots);

    // A's page goes on counting what came in over links (a NIC's counters
    // never go back); the new link's status counts from its start.
    REQUIRE(b2.pump_until([&] { return b2.links.up.size() == 1; }));
    b2.links.up[0]->counters().frames.fetch_add(2);
    std::uint64_t into_a = 0;
    for (const auto& slot : a.nic.state.state().slots) into_a += slot.frames.load();
    CHECK(into_a == 9);
    json = request_status(sock, true);
    CHECK_THAT(json, Catch::Contains("\"frames\":2,"));
    CHECK_THAT(json, !Catch::Contains("\"frames\":7,") && !Catch::Contains("\"frames\":9,"));
}

namespace {
// VM `vm` registers again with a new broker, reporting the links it has
// (what VmAgent sends after a restart).
void register_again(const std::filesystem::path& sock, FakeVm& vm, std::uint8_t mac_last,
                    std::vector<std::string> peers) {
    vm.client = BrokerClient(connect_broker(sock));
    Register reg{vm.name, "", {}};
    reg.nics.push_back(vm.nic.registration(0, mac(mac_last), std::move(peers)));
    reg.earlier_registrations = 1;
    for (const auto& l : vm.links.up)
        reg.links.push_back(LiveLink{l->id, l->local_nic, l->peer_vm, l->peer_nic, l->mode, l->automatic,
                                     l->producer_slot, l->peer_producer_slot});
    vm.client.register_vm(std::move(reg), vm.links);
}
}  // namespace

TEST_CASE("broker: a restarted broker adopts the links both VMs report, new links avoid their ids and slots",
          "[crossover][broker][adoption]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    auto first = std::make_unique<BrokerThread>(BrokerOptions{sock});
    FakeVm a(sock, "vm-a", 1, {"vm-b", "vm-c"});
    FakeVm b(sock, "vm-b", 2, {"vm-a"});
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(b.pump_until([&] { return b.links.up.size() == 1; }));
    const std::uint64_t id = a.links.up[0]->id;
    CHECK(a.links.up[0]->peer_producer_slot == b.links.up[0]->producer_slot);
    CHECK(b.links.up[0]->peer_producer_slot == a.links.up[0]->producer_slot);

    first.reset();  // the broker dies; the VMs keep their links
    REQUIRE(a.pump_until([&] { return a.links.lost; }));
    auto second = std::make_unique<BrokerThread>(BrokerOptions{sock});
    register_again(sock, a, 1, {"vm-b", "vm-c"});
    register_again(sock, b, 2, {"vm-a"});
    a.pump_briefly();
    b.pump_briefly();
    CHECK(a.links.up.size() == 1);  // no LinkUp again, no LinkDown
    CHECK(a.links.down.empty());
    CHECK(b.links.down.empty());
    std::string json = request_status(sock, true);
    CHECK_THAT(json, Catch::Contains(fmt::format("\"id\":{},", id)));
    CHECK_THAT(json, Catch::Contains("\"origin\":\"adopted\""));
    CHECK_THAT(json, Catch::Contains("\"registration\":2"));
    CHECK_THAT(json, Catch::Contains("\"links_adopted\":1"));

    // A newcomer linking to vm-a gets a new id and another slot of a's page.
    FakeVm c(sock, "vm-c", 3, {"vm-a"});
    REQUIRE(c.pump_until([&] { return c.links.up.size() == 1; }));
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 2; }));
    CHECK(c.links.up[0]->id > id);
    CHECK(c.links.up[0]->producer_slot != b.links.up[0]->producer_slot);
}

TEST_CASE("broker: after a restart, the end whose peer never returns gets LinkDown", "[crossover][broker][adoption]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    auto first = std::make_unique<BrokerThread>(BrokerOptions{sock});
    FakeVm a(sock, "vm-a", 1, {"vm-b"});
    auto b = std::make_unique<FakeVm>(sock, "vm-b", 2, std::vector<std::string>{"vm-a"});
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    const std::uint64_t id = a.links.up[0]->id;
    first.reset();
    b.reset();  // killed while no broker ran
    REQUIRE(a.pump_until([&] { return a.links.lost; }));
    BrokerOptions options{sock};
    options.adoption_grace = std::chrono::milliseconds(1000);
    auto second = std::make_unique<BrokerThread>(std::move(options));
    register_again(sock, a, 1, {"vm-b"});
    // Within the grace period it waits; after it, LinkDown.
    a.pump_briefly();
    CHECK(a.links.down.empty());
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    CHECK(a.links.down[0] == id);
    CHECK_THAT(request_status(sock, false), Catch::Contains("Links: 0"));
}

TEST_CASE("broker: duplicate name and MAC are refused with the reason", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});
    FakeVm a(sock, "vm-a", 1, {"vm-b"});
    try {
        FakeVm dup(sock, "vm-a", 3, {"vm-b"});
        FAIL("duplicate name accepted");
    } catch (const xover::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("VM 'vm-a' refused by the crossover broker: a VM named 'vm-a' is already registered"));
    }
    CHECK_THROWS_WITH(FakeVm(sock, "vm-c", 1, {"vm-a"}), Catch::Contains("MAC 52:54:00:12:34:01 is already used by VM 'vm-a'"));
    // The refused VMs left no trace.
    CHECK_THAT(request_status(sock, false), Catch::Contains("VMs: 1"));
}

TEST_CASE("broker: memory a peer could not safely map is refused", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});
    FakeNic nic("refused");
    BrokerClient c(connect_broker(sock));
    Register reg{"vm-u", "", {}};
    Recorder links;
    SECTION("a memfd that could shrink under a peer") {
        reg.nics.push_back(nic.registration(0, mac(5), {"x"}));
        reg.nics[0].ram = xover::kvm::UniqueFd(::memfd_create("plain", MFD_CLOEXEC));
        REQUIRE(::ftruncate(reg.nics[0].ram.get(), nic.ram_size) == 0);
        CHECK_THROWS_WITH(c.register_vm(std::move(reg), links), Catch::Contains("not sealed against shrinking"));
    }
    SECTION("a window NIC without its ring area") {
        reg.nics.push_back(nic.registration(0, mac(5), {"x"}, false, LinkMode::Window));
        reg.nics[0].rings = {};
        CHECK_THROWS_WITH(c.register_vm(std::move(reg), links), Catch::Contains("no ring area memfd"));
    }
}

TEST_CASE("broker: a link shares the ring area of a peer that has one, and a window link no RAM",
          "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});
    FakeVm a(sock, "vm-a", 1, {"vm-b"}, false, LinkMode::Window);
    FakeVm bb(sock, "vm-b", 2, {"vm-a"}, false, LinkMode::Window);
    FakeVm c(sock, "vm-c", 3, {"vm-d"}, false, LinkMode::Window);
    FakeVm d(sock, "vm-d", 4, {"vm-c"});  // copy: the link is a copy link
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(c.pump_until([&] { return c.links.up.size() == 1; }));
    REQUIRE(d.pump_until([&] { return d.links.up.size() == 1; }));

    PeerLink& ab = *a.links.up[0];
    CHECK(ab.mode == LinkMode::Window);
    REQUIRE(ab.peer_rings.size() == FakeNic::kRingBytes);
    // B's ring area decodes at 0xc0200000: A reaches it there, and only
    // the area's bytes.
    SharedMapping b_rings(bb.nic.rings.get(), FakeNic::kRingBytes);
    std::memcpy(b_rings.data() + 16, "rings", 5);
    CHECK(ab.peer_memory.span(0xc0200000 + 16, 5).empty());  // not placed yet
    bb.nic.state.state().ring_area_gpa.store(0xc0200000);
    auto seen = ab.peer_memory.span(0xc0200000 + 16, 5);
    REQUIRE(seen.size() == 5);
    CHECK(std::memcmp(seen.data(), "rings", 5) == 0);
    CHECK(ab.peer_memory.span(0xc0200000 + FakeNic::kRingBytes - 4, 8).empty());  // runs off the area
    CHECK(ab.peer_memory.span(0xc0200000 + FakeNic::kRingBytes, 4).empty());
    // Least sharing: nothing of B's RAM is mapped, so none of it is in reach.
    CHECK(!ab.peer_ram);
    CHECK(ab.peer_memory.span(4096, 64).empty());
    CHECK(ab.peer_memory.span(0, 1).empty());

    // A copy link (a window NIC and a copy one): the window NIC's rings are
    // in its ring area all the same, and its peer completes its TX ring
    // there when it moves frames c parked; d has none to share.
    CHECK(c.links.up[0]->mode == LinkMode::Copy);
    CHECK(c.links.up[0]->peer_rings.size() == 0);
    CHECK(d.links.up[0]->peer_rings.size() == FakeNic::kRingBytes);
    // A copy link reads and writes the peer's buffers wherever they are: RAM.
    CHECK(c.links.up[0]->peer_ram.size() == d.nic.ram_size);
    CHECK(d.links.up[0]->peer_ram.size() == c.nic.ram_size);
    CHECK(d.links.up[0]->peer_memory.span(4096, 64).size() == 64);
}


TEST_CASE("broker: auto wiring via FrameSeen", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});
    FakeVm a(sock, "vm-a", 1, {}, true);
    FakeVm c(sock, "vm-c", 3, {}, true);  // auto too: both consent
    FakeVm d(sock, "vm-d", 4, {});  // no crossover at all
    a.pump_briefly();
    CHECK(a.links.up.empty());  // auto waits for traffic

    // The VM's detector: vm-a sends a frame to vm-c's MAC, has no link, reports it.
    PeerTable table;
    std::uint8_t frame[60] = {0x52, 0x54, 0x00, 0x12, 0x34, 3, 0x52, 0x54, 0x00, 0x12, 0x34, 1, 0x08, 0x00};
    auto verdict = table.classify(frame);
    CHECK(verdict.verdict == PeerTable::Verdict::Unknown);
    auto now = std::chrono::steady_clock::now();
    REQUIRE(table.should_report(mac(3), now));
    CHECK_FALSE(table.should_report(mac(3), now));  // rate-limited
    REQUIRE(a.client.report_frame_seen(0, mac(3)));
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(c.pump_until([&] { return c.links.up.size() == 1; }));
    CHECK(a.links.up[0]->automatic);
    CHECK(a.links.up[0]->peer_vm == "vm-c");
    REQUIRE(table.add(a.links.up[0]));
    verdict = table.classify(frame);
    CHECK(verdict.verdict == PeerTable::Verdict::Peer);
    CHECK(verdict.peer->peer_vm == "vm-c");

    // vm-d never configured crossover: a frame to it makes no link.
    REQUIRE(a.client.report_frame_seen(0, mac(4)));
    a.pump_briefly();
    d.pump_briefly();
    CHECK(a.links.up.size() == 1);
    CHECK(d.links.up.empty());
    CHECK_THAT(request_status(sock, true), Catch::Contains("\"wiring\":\"auto\""));
}

TEST_CASE("broker: a malformed client is dropped, others are served", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});
    FakeVm a(sock, "vm-a", 1, {"vm-b"});
    auto bad = connect_broker(sock);
    REQUIRE(bad);
    std::uint8_t junk[20] = {1, 2, 3};
    REQUIRE(::send(bad.get(), junk, sizeof junk, 0) == sizeof junk);
    pollfd p{bad.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    CHECK(receive_message(bad.get()).status == Received::Status::Closed);  // broker hung up on it
    // A registered VM that misbehaves is removed (its peers would get LinkDown).
    FakeVm b2(sock, "vm-b", 2, {"vm-a"});
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(send_message(b2.client.fd(), RegisterOk{}));  // not something a VM may send
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    CHECK_THAT(request_status(sock, false), Catch::Contains("VMs: 1"));
}

namespace {
// Whether the broker's JSON status holds `text`.
bool status_has(const std::filesystem::path& sock, const std::string& text) {
    return request_status(sock, true).find(text) != std::string::npos;
}

// A broker and two VMs that name each other, linked.
struct LinkedPair {
    TempDir dir;
    std::filesystem::path sock = dir.path / "broker.sock";
    BrokerThread broker{BrokerOptions{sock}};
    FakeVm a{sock, "vm-a", 1, {"vm-b"}};
    FakeVm b{sock, "vm-b", 2, {"vm-a"}};
    LinkedPair() {
        REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
        REQUIRE(b.pump_until([&] { return b.links.up.size() == 1; }));
    }
};
}  // namespace

TEST_CASE("broker: SetPeers unlinks and links at run time, under the link rules", "[crossover][broker][set-peers]") {
    LinkedPair pair;
    FakeVm &a = pair.a, &vb = pair.b;
    const auto& sock = pair.sock;
    const std::uint64_t first = a.links.up[0]->id;

    // Unlink: a drops vm-b; both ends get LinkDown.
    REQUIRE(a.client.send_set_peers(0, {}));
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    REQUIRE(vb.pump_until([&] { return vb.links.down.size() == 1; }));
    CHECK(a.links.down[0] == first);
    CHECK(vb.links.down[0] == first);
    std::string table = request_status(sock, false);
    CHECK_THAT(table, Catch::Contains("Links: 0"));
    CHECK_THAT(table, Catch::Contains("(vm-a: waiting for its consent)"));  // vm-b still names vm-a
    CHECK(status_has(sock, "\"peers\":[],"));
    CHECK(status_has(sock, "\"waiting\":[{\"peer\":\"vm-a\",\"for\":\"its consent\"}]"));

    // Link again: a new id, LinkUp to both ends.
    REQUIRE(a.client.send_set_peers(0, {"vm-b"}));
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(vb.pump_until([&] { return vb.links.up.size() == 1; }));
    CHECK(a.links.up[0]->id > first);
    CHECK(a.links.up[0]->id == vb.links.up[0]->id);
    CHECK(a.links.up[0]->peer_vm == "vm-b");
    table = request_status(sock, false);
    CHECK_THAT(table, Catch::Contains("Links: 1"));
    CHECK_THAT(table, !Catch::Contains("waiting"));
    CHECK(status_has(sock, "\"peers\":[\"vm-b\"]"));
    CHECK(status_has(sock, "\"links_formed\":2"));

    // Naming a peer is not its consent: vm-c does not name vm-a.
    FakeVm c(sock, "vm-c", 3, {"vm-x"});
    REQUIRE(a.client.send_set_peers(0, {"vm-b", "vm-c"}));
    a.pump_briefly();
    c.pump_briefly();
    CHECK(c.links.up.empty());
    CHECK(a.links.up.size() == 1);
    CHECK_THAT(request_status(sock, false), Catch::Contains("(vm-c: waiting for its consent)"));
}

TEST_CASE("broker: a bad SetPeers changes nothing, from an unregistered client it closes that client",
          "[crossover][broker][set-peers]") {
    LinkedPair pair;
    FakeVm &a = pair.a, &vb = pair.b;
    const auto& sock = pair.sock;
    REQUIRE(a.client.send_set_peers(5, {}));                 // a registered no NIC 5
    REQUIRE(a.client.send_set_peers(0, {"bad name"}));       // not a VM name
    REQUIRE(a.client.send_set_peers(0, {"vm-b", "auto"}));  // reserved
    a.pump_briefly();
    vb.pump_briefly();
    CHECK(a.links.down.empty());
    CHECK(vb.links.down.empty());
    CHECK(status_has(sock, "\"peers\":[\"vm-b\"]"));
    CHECK_THAT(request_status(sock, false), Catch::Contains("VMs: 2"));
    // a is still served.
    REQUIRE(a.client.send_set_peers(0, {}));
    REQUIRE(vb.pump_until([&] { return vb.links.down.size() == 1; }));

    BrokerClient stranger(connect_broker(sock));
    REQUIRE(stranger.send_set_peers(0, {"vm-b"}));
    pollfd p{stranger.fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    CHECK(receive_message(stranger.fd()).status == Received::Status::Closed);
    CHECK_THAT(request_status(sock, false), Catch::Contains("VMs: 2"));
}

TEST_CASE("broker: SetPeers gives a NIC registered without crossover its first peers",
          "[crossover][broker][set-peers]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread b({sock});
    FakeVm a(sock, "vm-a", 1, {"vm-d"});
    FakeVm d(sock, "vm-d", 4, {});  // no crossover: its fds were not checked nor its page mapped
    a.pump_briefly();
    CHECK(a.links.up.empty());
    REQUIRE(d.client.send_set_peers(0, {"vm-a"}));
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    REQUIRE(d.pump_until([&] { return d.links.up.size() == 1; }));
    // The broker reads d's counters for status from the page it mapped now.
    a.links.up[0]->counters().frames.fetch_add(3);
    CHECK(status_has(sock, "\"a_to_b\":{\"frames\":3"));
}

namespace {
// A crossover NIC as the agent sees it: what the I/O thread hands it.
struct RecordingNic : LinkedNic {
    std::mutex mutex;
    std::size_t ups = 0, downs = 0;
    void crossover_link_up(std::shared_ptr<PeerLink>) override {
        std::lock_guard lock(mutex);
        ++ups;
    }
    void crossover_link_down(std::uint64_t) override {
        std::lock_guard lock(mutex);
        ++downs;
    }
    std::pair<std::size_t, std::size_t> counts() {
        std::lock_guard lock(mutex);
        return {ups, downs};
    }
};
}  // namespace

TEST_CASE("VmAgent::set_peers unlinks and links, and a restarted broker gets the current list",
          "[crossover][broker][set-peers]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    auto broker = std::make_unique<BrokerThread>(BrokerOptions{sock});
    FakeNic own("vm-a");
    RecordingNic nic;
    VmAgent agent;
    xover::test::LoopThread io;
    agent.add_nic(own.registration(0, mac(1), {"vm-b"}), nic);
    agent.register_vm("vm-a", "", sock, io.loop());
    FakeVm vb(sock, "vm-b", 2, {"vm-a"});
    REQUIRE(wait_until([&] { return agent.live_links().size() == 1; }));
    const LiveLink first = agent.live_links()[0];
    CHECK(first.peer_vm == "vm-b");
    CHECK(first.local_nic == 0);
    CHECK(agent.nic_indices() == std::vector<std::uint32_t>{0});
    CHECK(agent.peers(0) == std::vector<std::string>{"vm-b"});
    CHECK(agent.peers(1).empty());

    // Unlink.
    CHECK(agent.set_peers(0, {}));
    REQUIRE(vb.pump_until([&] { return vb.links.down.size() == 1; }));
    REQUIRE(wait_until([&] { return agent.live_links().empty() && nic.counts().second == 1; }));
    CHECK(agent.peers(0).empty());
    CHECK_THAT(request_status(sock, false), Catch::Contains("Links: 0"));

    // Refused here, before the broker sees anything.
    CHECK_FALSE(agent.set_peers(3, {"vm-b"}));  // no crossover NIC 3
    CHECK_THROWS_AS(agent.set_peers(0, {"bad name"}), xover::Error);
    CHECK_THROWS_AS(agent.set_peers(0, std::vector<std::string>(kMaxPeersPerNic + 1, "vm-b")), xover::Error);
    CHECK(agent.peers(0).empty());

    // Link again.
    CHECK(agent.set_peers(0, {"vm-b"}));
    REQUIRE(wait_until([&] { return agent.live_links().size() == 1 && nic.counts().first == 2; }));
    CHECK(agent.live_links()[0].link_id > first.link_id);

    // The broker restarts, and meanwhile the list changes: the agent's
    // next registration carries it.
    broker.reset();
    CHECK(agent.set_peers(0, {"vm-b", "vm-c"}));
    broker = std::make_unique<BrokerThread>(BrokerOptions{sock});
    CHECK(wait_until([&] { return status_has(sock, "\"peers\":[\"vm-b\",\"vm-c\"]"); }));
    agent.remove_nic(0);  // the last NIC: disconnects and stops watching before the loop goes
}

TEST_CASE("broker: --exit-when-idle ends after the last VM leaves", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    Broker broker(BrokerThread::without_seccomp({sock, true}));
    std::atomic<bool> finished{false};
    std::thread t([&] {
        broker.run();
        finished = true;
    });
    {
        FakeVm a(sock, "vm-a", 1, {"vm-b"});
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK_FALSE(finished.load());
    }
    for (int i = 0; i < 300 && !finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(finished.load());
    if (!finished) broker.stop();
    t.join();
}

TEST_CASE("broker: one broker per socket path", "[crossover][broker]") {
    TempDir dir;
    auto sock = dir.path / "sub" / "broker.sock";  // the directory is created
    BrokerThread b({sock});
    CHECK_THROWS_AS(Broker({sock}), BrokerAlreadyRunning);
    auto fd = ensure_broker(sock);  // already listening: just connects
    CHECK(fd);
    CHECK_FALSE(connect_broker(dir.path / "nobody.sock"));
}

TEST_CASE("ensure_broker starts `xover broker --exit-when-idle` when none listens", "[crossover][broker]") {
    auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "xover";
    if (!std::filesystem::exists(exe)) {
        WARN("no xover binary next to the test binary; skipped");
        return;
    }
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    {
        BrokerClient c(ensure_broker(sock, exe));
        Register reg{"vm-a", "", {}};
        Recorder links;
        c.register_vm(std::move(reg), links);
        CHECK_THAT(request_status(sock, false), Catch::Contains("vm-a"));
    }
    // The last (only) VM left: the broker exits and stops listening.
    bool gone = false;
    for (int i = 0; i < 300 && !gone; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        gone = !connect_broker(sock);
    }
    CHECK(gone);
}

TEST_CASE("default broker path follows XDG_RUNTIME_DIR", "[crossover][broker]") {
    const char* old = std::getenv("XDG_RUNTIME_DIR");
    std::string saved = old ? old : "";
    ::setenv("XDG_RUNTIME_DIR", "/tmp/rt", 1);
    CHECK(default_broker_path() == "/tmp/rt/xover/broker.sock");
    ::unsetenv("XDG_RUNTIME_DIR");
    CHECK(default_broker_path() == "/run/xover/broker.sock");
    if (old) ::setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
}

TEST_CASE("PeerGuestMemory follows the 32-bit hole layout", "[crossover][broker]") {
    std::vector<std::uint8_t> ram(16);
    PeerGuestMemory small(ram.data(), ram.size());
    CHECK(small.span(0, 16).size() == 16);
    CHECK(small.span(8, 9).empty());
    CHECK(small.span(~0ull, 2).empty());
    CHECK(small.span(0, 0).empty());
    // A 4 GiB guest: bytes 3G..4G of the memfd appear at GPA 4G..5G.
    PeerGuestMemory big(reinterpret_cast<std::uint8_t*>(0x1000), 4ull << 30);
    constexpr std::uint64_t kLowRamEnd = xover::vmm::layout::kMmioHoleStart;
    constexpr std::uint64_t kHighRamStart = xover::vmm::layout::kMmioHoleEnd;
    CHECK(big.span(kLowRamEnd - 4, 4).data() == reinterpret_cast<std::uint8_t*>(0x1000 + kLowRamEnd - 4));
    CHECK(big.span(kLowRamEnd - 4, 8).empty());  // runs into the hole
    CHECK(big.span(kHighRamStart, 4).data() == reinterpret_cast<std::uint8_t*>(0x1000 + kLowRamEnd));
    CHECK(big.span(kHighRamStart + (1ull << 30) - 4, 8).empty());
}
