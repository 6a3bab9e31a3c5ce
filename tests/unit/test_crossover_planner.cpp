// LinkPlanner: who gets linked with whom, and when.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "test_crossover_util.hpp"
#include "xover/crossover/link_planner.hpp"

#include <set>

using namespace xover::crossover;
using xover::crossover::test::mac;

namespace {

xover::net::MacAddress net_broadcast() { return xover::net::MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }

PlannedVm vm(std::string name, std::uint8_t mac_last, std::vector<std::string> peers, bool auto_peer = false,
             LinkMode mode = LinkMode::Copy, std::uint32_t uid = 1000, std::string group = "") {
    return PlannedVm{std::move(name), {PlannedNic{0, mac(mac_last), "e1000", std::move(peers), auto_peer, mode}}, uid,
                     std::move(group)};
}

// VM names p0, p1, ...
std::vector<std::string> peer_names(unsigned n) {
    std::vector<std::string> names;
    for (unsigned i = 0; i < n; ++i) names.push_back(fmt::format("p{}", i));
    return names;
}

bool connects(const Link& l, const std::string& x, const std::string& y) {
    return (l.a.vm == x && l.b.vm == y) || (l.a.vm == y && l.b.vm == x);
}

}  // namespace

TEST_CASE("static link when both list each other, in either order", "[crossover][planner]") {
    LinkPlanner p;
    bool a_first = GENERATE(true, false);
    auto first = a_first ? vm("a", 1, {"b"}) : vm("b", 2, {"a"});
    auto second = a_first ? vm("b", 2, {"a"}) : vm("a", 1, {"b"});
    auto r1 = p.add_vm(first);
    REQUIRE_FALSE(r1.error);
    CHECK(r1.plan.empty());  // the peer is not here yet
    auto r2 = p.add_vm(second);
    REQUIRE_FALSE(r2.error);
    REQUIRE(r2.plan.up.size() == 1);
    const Link& l = r2.plan.up[0];
    CHECK(connects(l, "a", "b"));
    CHECK_FALSE(l.automatic);
    CHECK(l.mode == LinkMode::Copy);
    CHECK(p.links().size() == 1);
}

TEST_CASE("one side listing the other is not consent: no link, shown as waiting", "[crossover][planner]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"})).error);
    SECTION("b lists someone else") {
        auto r = p.add_vm(vm("b", 2, {"c"}));
        CHECK(r.plan.empty());
        CHECK(p.frame_seen("a", 0, mac(2)).empty());
        CHECK(p.frame_seen("b", 0, mac(1)).empty());
        CHECK(p.waiting_for(NicRef{"a", 0}, "b") == "its consent");
        CHECK(p.links().empty());
    }
    SECTION("b is auto: a names b, b takes any consenting peer (auto link on traffic)") {
        CHECK(p.add_vm(vm("b", 2, {}, true)).plan.empty());
        CHECK(p.waiting_for(NicRef{"a", 0}, "b").empty());
        auto seen = p.frame_seen("a", 0, mac(2));
        REQUIRE(seen.up.size() == 1);
        CHECK(seen.up[0].automatic);
    }
    SECTION("b has no crossover configuration: never linked, never mapped") {
        auto r = p.add_vm(vm("b", 2, {}));
        CHECK(r.plan.empty());
        CHECK(p.frame_seen("a", 0, mac(2)).empty());
        CHECK(p.allowance(p.vms().at("a"), *p.vms().at("a").nic(0), p.vms().at("b"), *p.vms().at("b").nic(0)) ==
              Allowance::Never);
    }
}

TEST_CASE("one xover up file (one consent group): one side listing the other links", "[crossover][planner]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"}, false, LinkMode::Copy, 1000, "g1")).error);
    SECTION("same group") {
        auto r = p.add_vm(vm("b", 2, {"c"}, false, LinkMode::Copy, 1000, "g1"));
        REQUIRE(r.plan.up.size() == 1);
        CHECK(connects(r.plan.up[0], "a", "b"));
    }
    SECTION("another group, or none, is not the same file") {
        CHECK(p.add_vm(vm("b", 2, {"c"}, false, LinkMode::Copy, 1000, "g2")).plan.empty());
        CHECK(p.add_vm(vm("c", 3, {"x"})).plan.empty());
    }
}

TEST_CASE("VMs of different uids are never linked, unless the policy says so", "[crossover][planner]") {
    bool any_uid = GENERATE(false, true);
    LinkPlanner p(LinkPolicy{any_uid});
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"}, false, LinkMode::Copy, 1000)).error);
    auto r = p.add_vm(vm("b", 2, {"a"}, false, LinkMode::Copy, 1001));
    CHECK(r.plan.up.size() == (any_uid ? 1u : 0u));
    CHECK(p.waiting_for(NicRef{"a", 0}, "b") == (any_uid ? "" : "--link-any-uid (it runs as another uid)"));
}

TEST_CASE("names that are not VM names are refused", "[crossover][planner]") {
    LinkPlanner p;
    CHECK(p.add_vm(vm("bad\nname\x1b[31m", 1, {"b"})).error);
    CHECK(p.add_vm(vm(std::string(65, 'a'), 1, {"b"})).error);
    CHECK(p.add_vm(vm("ok", 1, {"b c"})).error);
    CHECK_FALSE(p.add_vm(vm("ok", 1, {"b"})).error);
}

TEST_CASE("a VM that is nobody's peer gets no link, not even from frames", "[crossover][planner]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"})).error);
    REQUIRE_FALSE(p.add_vm(vm("b", 2, {"a"})).error);
    auto r = p.add_vm(vm("c", 3, {"d"}));
    CHECK(r.plan.empty());
    CHECK(p.frame_seen("c", 0, mac(1)).empty());
    CHECK(p.frame_seen("a", 0, mac(3)).empty());
    CHECK(p.links().size() == 1);
}

TEST_CASE("auto: linked on the first frame, only once, unicast only", "[crossover][planner]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {}, true)).error);
    auto r = p.add_vm(vm("b", 2, {}, true));
    CHECK(r.plan.empty());                 // auto waits for traffic
    CHECK(p.frame_seen("a", 0, net_broadcast()).empty());
    CHECK(p.frame_seen("a", 0, mac(99)).empty());  // nobody has that MAC
    CHECK(p.frame_seen("a", 7, mac(2)).empty());   // no such NIC
    auto seen = p.frame_seen("b", 0, mac(1));      // either direction may trigger it
    REQUIRE(seen.up.size() == 1);
    CHECK(seen.up[0].automatic);
    CHECK(connects(seen.up[0], "a", "b"));
    CHECK(p.frame_seen("a", 0, mac(2)).empty());  // already linked
}

TEST_CASE("window mode only when both NICs ask for it", "[crossover][planner]") {
    LinkPlanner p;
    bool b_window = GENERATE(true, false);
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"}, false, LinkMode::Window)).error);
    auto r = p.add_vm(vm("b", 2, {"a"}, false, b_window ? LinkMode::Window : LinkMode::Copy));
    REQUIRE(r.plan.up.size() == 1);
    CHECK(r.plan.up[0].mode == (b_window ? LinkMode::Window : LinkMode::Copy));
}

TEST_CASE("window mode only between NICs of the same model", "[crossover][planner]") {
    LinkPlanner p;
    auto b = vm("b", 2, {"a"}, false, LinkMode::Window);
    b.nics[0].model = "virtio-net";
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"}, false, LinkMode::Window)).error);
    auto r = p.add_vm(b);
    REQUIRE(r.plan.up.size() == 1);
    CHECK(r.plan.up[0].mode == LinkMode::Copy);
}

TEST_CASE("teardown on disconnect and re-link on restart", "[crossover][planner]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"})).error);
    auto first = p.add_vm(vm("b", 2, {"a"})).plan.up.at(0);
    auto gone = p.remove_vm("b");
    REQUIRE(gone.down.size() == 1);
    CHECK(gone.down[0].id == first.id);
    CHECK(p.links().empty());
    CHECK(p.remove_vm("b").empty());  // twice is harmless

    auto again = p.add_vm(vm("b", 2, {"a"}));  // same name and MAC: allowed again
    REQUIRE_FALSE(again.error);
    REQUIRE(again.plan.up.size() == 1);
    CHECK(again.plan.up[0].id != first.id);
    CHECK(connects(again.plan.up[0], "a", "b"));
}

TEST_CASE("duplicates are refused with a clear reason and change nothing", "[crossover][planner]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"})).error);
    SECTION("name") {
        auto r = p.add_vm(vm("a", 5, {"b"}));
        REQUIRE(r.error);
        CHECK_THAT(*r.error, Catch::Contains("a VM named 'a' is already registered"));
    }
    SECTION("MAC of another VM") {
        auto r = p.add_vm(vm("b", 1, {"a"}));
        REQUIRE(r.error);
        CHECK_THAT(*r.error, Catch::Contains("52:54:00:12:34:01 is already used by VM 'a'"));
        CHECK(p.links().empty());
        CHECK(p.vms().size() == 1);
    }
    SECTION("MAC twice within one VM") {
        PlannedVm two{"c", {PlannedNic{0, mac(7), "e1000", {"a"}}, PlannedNic{1, mac(7), "e1000", {"a"}}}, 1000, ""};
        auto r = p.add_vm(two);
        REQUIRE(r.error);
        CHECK_THAT(*r.error, Catch::Contains("used by two NICs"));
    }
    SECTION("multicast MAC") {
        PlannedVm m{"c", {PlannedNic{0, net_broadcast(), "e1000", {"a"}}}, 1000, ""};
        CHECK(p.add_vm(m).error);
    }
    CHECK(p.vms().size() == 1);
}

TEST_CASE("one-to-many: a NIC links with every allowed peer, up to the slot limit", "[crossover][planner]") {
    LinkPlanner p;
    const std::vector<std::string> all = peer_names(xover::nic::kMaxProducerSlots + 2);
    REQUIRE_FALSE(p.add_vm(vm("hub", 200, all)).error);
    for (unsigned i = 0; i < xover::nic::kMaxProducerSlots + 2; ++i)
        REQUIRE_FALSE(p.add_vm(vm(all[i], static_cast<std::uint8_t>(i + 1), {})).error);
    CHECK(p.links().empty());  // peers without crossover config are never linked
    // Now peers that name the hub.
    LinkPlanner q;
    REQUIRE_FALSE(q.add_vm(vm("hub", 200, all)).error);
    std::set<std::uint32_t> hub_slots;
    for (unsigned i = 0; i < xover::nic::kMaxProducerSlots + 2; ++i) {
        auto r = q.add_vm(vm(all[i], static_cast<std::uint8_t>(i + 1), {"hub"}));
        REQUIRE_FALSE(r.error);
        if (i < xover::nic::kMaxProducerSlots) {
            REQUIRE(r.plan.up.size() == 1);
            hub_slots.insert(r.plan.up[0].slot_in_a);  // a = hub (registered first)
        } else {
            CHECK(r.plan.up.empty());  // no free counter slot on the hub
        }
    }
    CHECK(hub_slots.size() == xover::nic::kMaxProducerSlots);  // distinct slots
    // A slot freed by a departure is reused.
    q.remove_vm(all[0]);
    CHECK(q.frame_seen(all[xover::nic::kMaxProducerSlots], 0, mac(200)).up.size() == 1);
}

TEST_CASE("set_peers: unlink tears the link down, link makes it again with a new id and the freed slots",
          "[crossover][planner][set-peers]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"})).error);
    const Link first = p.add_vm(vm("b", 2, {"a"})).plan.up.at(0);

    auto unlinked = p.set_peers(NicRef{"a", 0}, {});
    REQUIRE_FALSE(unlinked.error);
    REQUIRE(unlinked.plan.down.size() == 1);
    CHECK(unlinked.plan.down[0].id == first.id);
    CHECK(unlinked.plan.up.empty());
    CHECK(p.links().empty());
    CHECK(p.nic(NicRef{"a", 0})->peers.empty());
    CHECK(p.set_peers(NicRef{"a", 0}, {}).plan.empty());  // twice is harmless

    auto linked = p.set_peers(NicRef{"a", 0}, {"b"});
    REQUIRE_FALSE(linked.error);
    CHECK(linked.plan.down.empty());
    REQUIRE(linked.plan.up.size() == 1);
    const Link& again = linked.plan.up[0];
    CHECK(again.id > first.id);
    CHECK(connects(again, "a", "b"));
    CHECK_FALSE(again.automatic);
    CHECK(again.b == NicRef{"a", 0});  // the changed NIC is b, as a newcomer is
    CHECK(std::set<std::uint32_t>{again.slot_in_a, again.slot_in_b} == std::set<std::uint32_t>{0});  // reused
    CHECK(p.set_peers(NicRef{"a", 0}, {"b"}).plan.empty());  // linked already
    CHECK(p.links().size() == 1);
}

TEST_CASE("set_peers: naming a peer is not its consent", "[crossover][planner][set-peers]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"x"})).error);
    REQUIRE_FALSE(p.add_vm(vm("b", 2, {"c"})).error);
    auto one_sided = p.set_peers(NicRef{"a", 0}, {"b"});
    REQUIRE_FALSE(one_sided.error);
    CHECK(one_sided.plan.empty());
    CHECK(p.waiting_for(NicRef{"a", 0}, "b") == "its consent");
    CHECK(p.frame_seen("a", 0, mac(2)).empty());
    // b names a too: now both consent.
    auto both = p.set_peers(NicRef{"b", 0}, {"c", "a"});
    REQUIRE(both.plan.up.size() == 1);
    CHECK(connects(both.plan.up[0], "a", "b"));
    CHECK(p.waiting_for(NicRef{"a", 0}, "b").empty());
    // Either side dropping the other unlinks.
    CHECK(p.set_peers(NicRef{"b", 0}, {"c"}).plan.down.size() == 1);
    CHECK(p.waiting_for(NicRef{"a", 0}, "b") == "its consent");
}

TEST_CASE("set_peers in one consent group: the link stays while either side names the other",
          "[crossover][planner][set-peers]") {
    LinkPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"}, false, LinkMode::Copy, 1000, "g1")).error);
    REQUIRE(p.add_vm(vm("b", 2, {"a"}, false, LinkMode::Copy, 1000, "g1")).plan.up.size() == 1);
    // One `xover up` file: b naming a is consent enough for both.
    CHECK(p.set_peers(NicRef{"a", 0}, {"c"}).plan.empty());
    CHECK(p.links().size() == 1);
    // Neither names the other (and neither is auto): unlinked.
    CHECK(p.set_peers(NicRef{"b", 0}, {"c"}).plan.down.size() == 1);
    CHECK(p.links().empty());
    // One side naming the other links them again.
    auto again = p.set_peers(NicRef{"a", 0}, {"c", "b"});
    REQUIRE(again.plan.up.size() == 1);
    CHECK(connects(again.plan.up[0], "a", "b"));
    // No peers and not auto is no crossover at all: unlinked although b names a.
    CHECK(p.set_peers(NicRef{"b", 0}, {"a"}).plan.empty());
    CHECK(p.set_peers(NicRef{"a", 0}, {}).plan.down.size() == 1);
    CHECK(p.links().empty());
}

TEST_CASE("set_peers: window mode and auto wiring as before, other NICs untouched, bad input refused",
          "[crossover][planner][set-peers]") {
    LinkPlanner p;
    SECTION("window mode") {
        REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"}, false, LinkMode::Window)).error);
        REQUIRE(p.add_vm(vm("b", 2, {"a"}, false, LinkMode::Window)).plan.up.at(0).mode == LinkMode::Window);
        CHECK(p.set_peers(NicRef{"b", 0}, {}).plan.down.at(0).mode == LinkMode::Window);
        CHECK(p.set_peers(NicRef{"b", 0}, {"a"}).plan.up.at(0).mode == LinkMode::Window);
    }
    SECTION("an auto link stays while both NICs allow auto wiring") {
        REQUIRE_FALSE(p.add_vm(vm("a", 1, {}, true)).error);
        REQUIRE_FALSE(p.add_vm(vm("b", 2, {}, true)).error);
        REQUIRE(p.frame_seen("a", 0, mac(2)).up.size() == 1);
        auto named = p.set_peers(NicRef{"a", 0}, {"c"});
        CHECK(named.plan.empty());
        CHECK(p.nic(NicRef{"a", 0})->auto_peer);
        CHECK(p.set_peers(NicRef{"a", 0}, {}).plan.empty());
        CHECK(p.links().size() == 1);
    }
    SECTION("only the changed NIC's links") {
        PlannedVm a{"a", {PlannedNic{0, mac(1), "e1000", {"b"}}, PlannedNic{1, mac(11), "e1000", {"c"}}}, 1000, ""};
        REQUIRE_FALSE(p.add_vm(a).error);
        REQUIRE(p.add_vm(vm("b", 2, {"a"})).plan.up.size() == 1);
        REQUIRE(p.add_vm(vm("c", 3, {"a"})).plan.up.size() == 1);
        auto down = p.set_peers(NicRef{"a", 1}, {});
        REQUIRE(down.plan.down.size() == 1);
        CHECK(connects(down.plan.down[0], "a", "c"));
        CHECK(p.links().size() == 1);
        CHECK(p.linked(NicRef{"a", 0}, NicRef{"b", 0}));
    }
    SECTION("unknown NIC or VM, bad names, too many peers: refused, nothing changed") {
        REQUIRE_FALSE(p.add_vm(vm("a", 1, {"b"})).error);
        REQUIRE(p.add_vm(vm("b", 2, {"a"})).plan.up.size() == 1);
        CHECK_THAT(*p.set_peers(NicRef{"a", 7}, {}).error, Catch::Contains("VM 'a' has no NIC 7"));
        CHECK(p.set_peers(NicRef{"z", 0}, {}).error);
        CHECK(p.set_peers(NicRef{"a", 0}, {"b", "bad name"}).error);
        CHECK(p.set_peers(NicRef{"a", 0}, {"auto"}).error);
        CHECK(p.set_peers(NicRef{"a", 0}, std::vector<std::string>(kMaxPeersPerNic + 1, "b")).error);
        CHECK(p.nic(NicRef{"a", 0})->peers == std::vector<std::string>{"b"});
        CHECK(p.links().size() == 1);
    }
}

TEST_CASE("set_peers: a hub dropping one peer frees a slot for a waiting one", "[crossover][planner][set-peers]") {
    LinkPlanner p;
    const std::vector<std::string> all = peer_names(xover::nic::kMaxProducerSlots + 1);
    REQUIRE_FALSE(p.add_vm(vm("hub", 200, all)).error);
    for (unsigned i = 0; i <= xover::nic::kMaxProducerSlots; ++i)
        REQUIRE_FALSE(p.add_vm(vm(all[i], static_cast<std::uint8_t>(i + 1), {"hub"})).error);
    const std::string last = all.back();
    REQUIRE(p.links().size() == xover::nic::kMaxProducerSlots);  // the last peer found no slot
    auto without_first = std::vector<std::string>(all.begin() + 1, all.end());
    auto changed = p.set_peers(NicRef{"hub", 0}, without_first);
    REQUIRE(changed.plan.down.size() == 1);
    CHECK(connects(changed.plan.down[0], "hub", "p0"));
    REQUIRE(changed.plan.up.size() == 1);  // the waiting peer takes the freed slot
    CHECK(connects(changed.plan.up[0], "hub", last));
    CHECK(changed.plan.up[0].slot_in_b == changed.plan.down[0].slot_in_a);
}
