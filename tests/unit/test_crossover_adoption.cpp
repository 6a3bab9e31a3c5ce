// LinkAdoption: a restarted broker takes over the links both ends report,
// and refuses the rest, whatever a client claims.
#include <catch2/catch.hpp>

#include "test_crossover_util.hpp"
#include "xover/crossover/link_adoption.hpp"

using namespace xover::crossover;
using xover::crossover::test::mac;
using namespace std::chrono_literals;

namespace {

using Clock = LinkAdoption::Clock;

PlannedVm vm(std::string name, std::uint8_t mac_last, std::vector<std::string> peers, bool auto_peer = false) {
    return PlannedVm{std::move(name), {PlannedNic{0, mac(mac_last), "e1000", std::move(peers), auto_peer, LinkMode::Copy}},
                     1000, ""};
}

// Link `id` between x#0 and y#0 as x reports it: x writes into y's page
// with slot `x_slot`, y into x's with `y_slot`.
LiveLink report(std::uint64_t id, const std::string& peer, std::uint32_t x_slot, std::uint32_t y_slot) {
    return LiveLink{id, 0, peer, 0, LinkMode::Copy, false, x_slot, y_slot};
}

struct Restarted {
    LinkPlanner planner;
    LinkAdoption adoption;
    Clock::time_point now = Clock::time_point{} + 1h;

    LinkAdoption::Outcome comes_back(PlannedVm v, std::vector<LiveLink> links) {
        std::string name = v.name;
        REQUIRE_FALSE(planner.admit_vm(std::move(v)));
        return adoption.reported(planner, name, links, now);
    }
};

}  // namespace

TEST_CASE("adoption: a link both ends report alike is adopted, not made again", "[crossover][adoption]") {
    Restarted r;
    auto first = r.comes_back(vm("a", 1, {"b"}), {report(7, "b", 3, 5)});
    CHECK(first.adopted.empty());
    CHECK(first.refused.empty());
    CHECK(r.adoption.waiting() == 1);
    auto second = r.comes_back(vm("b", 2, {"a"}), {report(7, "a", 5, 3)});
    REQUIRE(second.adopted.size() == 1);
    CHECK(second.refused.empty());
    const Link& l = second.adopted[0];
    CHECK(l.id == 7);
    CHECK(l.adopted);
    CHECK(l.a == NicRef{"a", 0});
    CHECK(l.b == NicRef{"b", 0});
    CHECK(l.slot_in_a == 5);  // b writes into a's page with slot 5
    CHECK(l.slot_in_b == 3);
    CHECK(r.planner.static_links("b").empty());  // linked already: no LinkUp again
    CHECK(r.adoption.waiting() == 0);
    CHECK_FALSE(r.adoption.next_deadline());
}

TEST_CASE("adoption: new links never collide with adopted or awaited ids and slots", "[crossover][adoption]") {
    Restarted r;
    // a is back and waits for b: a's slot 0 (b's) and id 40 stay held.
    r.comes_back(vm("a", 1, {"b", "c"}), {report(40, "b", 1, 0)});
    REQUIRE(r.adoption.waiting() == 1);
    auto c = r.comes_back(vm("c", 3, {"a"}), {});
    REQUIRE(c.refused.empty());
    Plan plan = r.planner.static_links("c");
    REQUIRE(plan.up.size() == 1);
    CHECK(plan.up[0].id > 40);
    CHECK(plan.up[0].slot_in_a != 0);  // slot 0 of a's page is b's
    auto b = r.comes_back(vm("b", 2, {"a"}), {report(40, "a", 0, 1)});
    REQUIRE(b.adopted.size() == 1);
    CHECK(r.planner.links().size() == 2);
}

TEST_CASE("adoption: ends that disagree are both refused, and may link afresh", "[crossover][adoption]") {
    Restarted r;
    r.comes_back(vm("a", 1, {"b"}), {report(7, "b", 3, 5)});
    LiveLink lie = GENERATE(report(7, "a", 4, 3), report(7, "a", 5, 2),
                            LiveLink{7, 0, "a", 0, LinkMode::Window, false, 5, 3},
                            LiveLink{7, 0, "a", 0, LinkMode::Copy, true, 5, 3},
                            LiveLink{7, 0, "a", 1, LinkMode::Copy, false, 5, 3});
    auto b = r.comes_back(vm("b", 2, {"a"}), {lie});
    CHECK(b.adopted.empty());
    REQUIRE(b.refused.size() == 2);
    CHECK(b.refused[0].reporter == NicRef{"b", 0});
    CHECK(b.refused[1].reporter == NicRef{"a", 0});
    CHECK(r.planner.links().empty());
    Plan fresh = r.planner.static_links("b");  // the normal rules link them again
    REQUIRE(fresh.up.size() == 1);
    CHECK(fresh.up[0].id > 7);
    CHECK_FALSE(fresh.up[0].adopted);
}

TEST_CASE("adoption: the survivor of a dead peer is refused after the grace period", "[crossover][adoption]") {
    Restarted r;
    r.comes_back(vm("a", 1, {"b"}), {report(7, "b", 3, 0)});  // holds slot 0 of a's page
    REQUIRE(r.adoption.next_deadline() == r.now + kAdoptionGrace);
    CHECK(r.adoption.expire(r.planner, r.now + kAdoptionGrace - 1ms).refused.empty());
    auto late = r.adoption.expire(r.planner, r.now + kAdoptionGrace);
    REQUIRE(late.refused.size() == 1);
    CHECK(late.refused[0].reporter == NicRef{"a", 0});
    CHECK(late.refused[0].link_id == 7);
    CHECK(r.adoption.waiting() == 0);
    // b restarted later: a fresh link, in the slot a's report held (freed).
    auto b = r.comes_back(vm("b", 2, {"a"}), {});
    CHECK(b.refused.empty());
    Plan fresh = r.planner.static_links("b");
    REQUIRE(fresh.up.size() == 1);
    CHECK(fresh.up[0].slot_in_a == 0);
}

TEST_CASE("adoption: a peer that registers without the link makes its reporter's end dead", "[crossover][adoption]") {
    Restarted r;
    SECTION("the reporter came first") {
        r.comes_back(vm("a", 1, {"b"}), {report(7, "b", 3, 5)});
        auto b = r.comes_back(vm("b", 2, {"a"}), {});
        REQUIRE(b.refused.size() == 1);
        CHECK(b.refused[0].reporter == NicRef{"a", 0});
    }
    SECTION("the peer came first") {
        r.comes_back(vm("b", 2, {"a"}), {});
        auto a = r.comes_back(vm("a", 1, {"b"}), {report(7, "b", 3, 5)});
        REQUIRE(a.refused.size() == 1);
        CHECK(a.refused[0].reporter == NicRef{"a", 0});
    }
    CHECK(r.adoption.waiting() == 0);
    CHECK(r.planner.static_links("a").up.size() == 1);
}

TEST_CASE("adoption: hostile reports are refused one by one", "[crossover][adoption]") {
    Restarted r;
    LiveLink bad = GENERATE(report(0, "b", 0, 1), report(kMaxLinkId, "b", 0, 1), report(7, "b", 8, 1),
                            report(7, "b", 0, 99), report(7, "a", 0, 1), report(7, "no such/name", 0, 1),
                            LiveLink{7, 3, "b", 0, LinkMode::Copy, false, 0, 1});
    auto a = r.comes_back(vm("a", 1, {"b"}), {bad});
    REQUIRE(a.refused.size() == 1);
    CHECK(r.adoption.waiting() == 0);
    SECTION("twice the same id: the second is refused") {
        Restarted twice;
        auto out = twice.comes_back(vm("a", 1, {"b", "c"}), {report(7, "b", 0, 1), report(7, "c", 2, 3)});
        CHECK(out.refused.size() == 1);
        CHECK(twice.adoption.waiting() == 1);
    }
    SECTION("two reports holding one slot of its own page: the second is refused") {
        Restarted slot;
        auto out = slot.comes_back(vm("a", 1, {"b", "c"}), {report(7, "b", 0, 1), report(8, "c", 2, 1)});
        CHECK(out.refused.size() == 1);
    }
}

TEST_CASE("adoption: a link the policy forbids is not adopted, even when both ends report it",
          "[crossover][adoption]") {
    Restarted r;
    // Neither lists the other any more: no consent, whatever they report.
    r.comes_back(vm("a", 1, {"x"}), {report(7, "b", 3, 5)});
    auto b = r.comes_back(vm("b", 2, {"y"}), {report(7, "a", 5, 3)});
    CHECK(b.adopted.empty());
    CHECK(b.refused.size() == 2);
}

TEST_CASE("adoption: a VM that leaves while awaited frees what its reports held", "[crossover][adoption]") {
    Restarted r;
    r.comes_back(vm("a", 1, {"b"}), {report(7, "b", 3, 5)});
    r.adoption.vm_gone(r.planner, "a");
    r.planner.remove_vm("a");
    CHECK(r.adoption.waiting() == 0);
    CHECK(r.adoption.expire(r.planner, r.now + 1h).refused.empty());
}
