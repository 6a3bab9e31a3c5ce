// SoundPlanner: which sound card is wired to which, and when.
#include <catch2/catch.hpp>

#include "xover/crossover/sound_planner.hpp"

using namespace xover::crossover;

namespace {

PlannedSound card(std::uint32_t index, std::string peer, std::uint32_t rate = 48000, std::uint32_t channels = 2) {
    return PlannedSound{index, std::move(peer), rate, channels};
}

SoundVm vm(std::string name, std::vector<PlannedSound> cards, std::string group = "", std::uint32_t uid = 1000) {
    return SoundVm{std::move(name), uid, std::move(group), std::move(cards)};
}

bool joins(const SoundLink& l, const CardRef& x, const CardRef& y) {
    return (l.a == x && l.b == y) || (l.a == y && l.b == x);
}

CardRef ref(std::string vm, std::uint32_t c) { return CardRef{std::move(vm), c}; }

}  // namespace

TEST_CASE("sound: two cards naming each other link when the second registers, in either order",
          "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    const bool a_first = GENERATE(true, false);
    auto a = vm("a", {card(0, "b")});
    auto b = vm("b", {card(0, "a")});
    auto r1 = p.add_vm(a_first ? a : b);
    REQUIRE_FALSE(r1.error);
    CHECK(r1.plan.empty());
    const CardRef first = a_first ? ref("a", 0) : ref("b", 0);
    CHECK(p.state(first).kind == SoundCardState::Kind::Waiting);
    CHECK(p.state(first).text == (a_first ? "waiting for b" : "waiting for a"));

    auto r2 = p.add_vm(a_first ? b : a);
    REQUIRE_FALSE(r2.error);
    REQUIRE(r2.plan.up.size() == 1);
    CHECK(joins(r2.plan.up[0], ref("a", 0), ref("b", 0)));
    CHECK(r2.plan.refused.empty());
    CHECK(p.linked_to(ref("a", 0)) == ref("b", 0));
    CHECK(p.linked_to(ref("b", 0)) == ref("a", 0));
    auto s = p.state(ref("a", 0));
    CHECK(s.kind == SoundCardState::Kind::Linked);
    CHECK(s.text == "linked to b.snd0");
    CHECK(p.links().size() == 1);
}

TEST_CASE("sound: one side naming the other is not consent: it waits", "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", {card(0, "b")})).error);
    auto r = p.add_vm(vm("b", {card(0, "c")}));
    REQUIRE_FALSE(r.error);
    CHECK(r.plan.empty());
    CHECK(p.state(ref("a", 0)).text == "waiting for b (its consent: no sound card of b names a)");
    CHECK(p.state(ref("b", 0)).text == "waiting for c");

    // A VM without sound cards: still no consent.
    REQUIRE_FALSE(p.add_vm(vm("d", {card(0, "e")})).error);
    REQUIRE_FALSE(p.add_vm(vm("e", {})).error);
    CHECK(p.state(ref("d", 0)).text == "waiting for e (its consent: no sound card of e names d)");
}

TEST_CASE("sound: one consent group: one side naming the other links", "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("a", {card(0, "b")}, "g1")).error);
    REQUIRE_FALSE(p.add_vm(vm("c", {card(0, "a")}, "g1")).error);  // names a; a names b
    // c registered: a.snd0 names c? no; c.snd0 names a, one consent group. But
    // a.snd0 names b, which is not registered: kept for it.
    CHECK(p.links().empty());
    CHECK(p.state(ref("c", 0)).text == "waiting for a (a.snd0 waits for b)");
    // b registers with a card naming someone else: a and b do not name each
    // other mutually, but a names b (one group), and every named VM is here.
    auto r = p.add_vm(vm("b", {card(0, "c")}, "g1"));
    REQUIRE_FALSE(r.error);
    // b.snd0 <-> c.snd0? b names c, c names a: one-sided, both registered.
    // a.snd0 <-> b.snd0: a names b, one-sided. The planner takes the cards
    // in order: a.snd0 first, with b.snd0 (the VM it names).
    REQUIRE(r.plan.up.size() == 1);
    CHECK(joins(r.plan.up[0], ref("a", 0), ref("b", 0)));
    CHECK(p.state(ref("c", 0)).text == "waiting for a (every sound card of a that may link with it is linked)");

    SECTION("different groups: no link") {
        SoundPlanner q;
        REQUIRE_FALSE(q.add_vm(vm("a", {card(0, "b")}, "g1")).error);
        CHECK(q.add_vm(vm("b", {card(0, "c")}, "g2")).plan.empty());
    }
}

TEST_CASE("sound: in a consent group, a card's named peer comes first", "[crossover][sound][sound-planner]") {
    SECTION("both name each other before one-sided pairs, in any registration order") {
        // a -> b, b -> c, c -> b: b and c pair; a waits, whoever comes first.
        std::vector<SoundVm> vms = {vm("a", {card(0, "b")}, "g"), vm("b", {card(0, "c")}, "g"),
                                    vm("c", {card(0, "b")}, "g")};
        const int order = GENERATE(0, 1, 2, 3, 4, 5);
        std::vector<int> idx = {0, 1, 2};
        for (int i = 0; i < order; ++i) std::next_permutation(idx.begin(), idx.end());
        SoundPlanner p;
        for (int i : idx) REQUIRE_FALSE(p.add_vm(vms[i]).error);
        REQUIRE(p.links().size() == 1);
        CHECK(joins(p.links()[0], ref("b", 0), ref("c", 0)));
        CHECK(p.state(ref("a", 0)).text == "waiting for b (every sound card of b that may link with it is linked)");
    }
    SECTION("a card that names this VM back before the lowest index") {
        SoundPlanner p;
        REQUIRE_FALSE(p.add_vm(vm("c", {card(0, "b")}, "g")).error);
        REQUIRE_FALSE(p.add_vm(vm("b", {card(0, "c"), card(1, "a")}, "g")).error);
        auto r = p.add_vm(vm("a", {card(0, "b")}, "g"));
        REQUIRE(r.plan.up.size() == 1);
        CHECK(joins(r.plan.up[0], ref("a", 0), ref("b", 1)));
        CHECK(p.linked_to(ref("c", 0)) == ref("b", 0));  // paired when b came
    }
}

TEST_CASE("sound: VMs of different uids never link, unless the policy says so", "[crossover][sound][sound-planner]") {
    SoundPlanner strict;
    REQUIRE_FALSE(strict.add_vm(vm("a", {card(0, "b")}, "", 1000)).error);
    CHECK(strict.add_vm(vm("b", {card(0, "a")}, "", 1001)).plan.empty());
    CHECK(strict.state(ref("a", 0)).text == "waiting for b (--link-any-uid: it runs as another uid)");
    // Not even in one consent group.
    SoundPlanner group;
    REQUIRE_FALSE(group.add_vm(vm("a", {card(0, "b")}, "g", 1000)).error);
    CHECK(group.add_vm(vm("b", {card(0, "a")}, "g", 1001)).plan.empty());

    SoundPlanner any(LinkPolicy{true});
    REQUIRE_FALSE(any.add_vm(vm("a", {card(0, "b")}, "", 1000)).error);
    CHECK(any.add_vm(vm("b", {card(0, "a")}, "", 1001)).plan.up.size() == 1);
}

TEST_CASE("sound: formats that differ are refused, once, naming both cards and formats",
          "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("b", {card(0, "a", 44100, 1)})).error);
    auto r = p.add_vm(vm("a", {card(0, "b", 48000, 2)}));
    REQUIRE_FALSE(r.error);
    CHECK(r.plan.up.empty());
    REQUIRE(r.plan.refused.size() == 1);
    const std::string reason = "a.snd0 (48000 Hz, 2 channels) and b.snd0 (44100 Hz, 1 channel) differ: the link is refused";
    CHECK(r.plan.refused[0].reason == reason);
    CHECK(joins(SoundLink{r.plan.refused[0].a, r.plan.refused[0].b}, ref("a", 0), ref("b", 0)));
    CHECK(p.state(ref("a", 0)).kind == SoundCardState::Kind::Refused);
    CHECK(p.state(ref("a", 0)).text == "refused: " + reason);
    CHECK(p.state(ref("b", 0)).text == "refused: " + reason);

    // Other VMs coming and going do not repeat it.
    CHECK(p.add_vm(vm("c", {card(0, "d")})).plan.empty());
    CHECK(p.remove_vm("c").empty());

    // b registers again (restarted, same format): refused again, once.
    CHECK(p.remove_vm("b").empty());  // there was no link to take down
    CHECK(p.state(ref("a", 0)).text == "waiting for b");
    auto again = p.add_vm(vm("b", {card(0, "a", 44100, 1)}));
    CHECK(again.plan.refused.size() == 1);
    // ... and with the same format as a: linked.
    p.remove_vm("b");
    auto fixed = p.add_vm(vm("b", {card(0, "a", 48000, 2)}));
    REQUIRE(fixed.plan.up.size() == 1);
    CHECK(fixed.plan.refused.empty());

    SECTION("a card of the same format is taken over one that differs") {
        SoundPlanner q;
        REQUIRE_FALSE(q.add_vm(vm("b", {card(0, "a", 44100, 2), card(1, "a", 48000, 1)})).error);
        auto m = q.add_vm(vm("a", {card(0, "b", 48000, 1)}));
        REQUIRE(m.plan.up.size() == 1);
        CHECK(joins(m.plan.up[0], ref("a", 0), ref("b", 1)));
        CHECK(m.plan.refused.empty());  // a.snd0 is linked; b.snd0 waits for a card of a
        CHECK(q.state(ref("b", 0)).kind == SoundCardState::Kind::Waiting);
    }
}

TEST_CASE("sound: a VM that leaves takes its links down, its peer waits, it comes back and relinks",
          "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    p.add_vm(vm("a", {card(0, "b")}));
    REQUIRE(p.add_vm(vm("b", {card(0, "a")})).plan.up.size() == 1);
    auto gone = p.remove_vm("b");
    REQUIRE(gone.down.size() == 1);
    CHECK(gone.down[0].a == ref("a", 0));  // the card still here, to be told
    CHECK(gone.down[0].b == ref("b", 0));
    CHECK(gone.down[0].reason == "b went away");
    CHECK(gone.up.empty());
    CHECK_FALSE(p.linked_to(ref("a", 0)));
    CHECK(p.state(ref("a", 0)).text == "waiting for b");
    CHECK(p.remove_vm("b").empty());  // gone already

    // Re-registration (a restart, or a restarted broker): just planned again.
    auto back = p.add_vm(vm("b", {card(0, "a")}));
    REQUIRE(back.plan.up.size() == 1);
    CHECK(joins(back.plan.up[0], ref("a", 0), ref("b", 0)));
}

TEST_CASE("sound: several cards: the lowest free index, a second peer for a linked card waits",
          "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    REQUIRE_FALSE(p.add_vm(vm("b", {card(2, "a"), card(0, "a"), card(1, "a")})).error);
    auto r = p.add_vm(vm("a", {card(0, "b"), card(1, "b")}));
    REQUIRE(r.plan.up.size() == 2);
    CHECK(p.linked_to(ref("a", 0)) == ref("b", 0));
    CHECK(p.linked_to(ref("a", 1)) == ref("b", 1));
    CHECK(p.state(ref("b", 2)).text == "waiting for a (every sound card of a that may link with it is linked)");

    // c's card names b, and b's cards name a (one consent group would not
    // change it: b's cards that may link are linked).
    SoundPlanner q;
    q.add_vm(vm("a", {card(0, "b")}, "g"));
    q.add_vm(vm("b", {card(0, "a")}, "g"));
    auto c = q.add_vm(vm("c", {card(0, "b")}, "g"));
    CHECK(c.plan.empty());
    CHECK(q.state(ref("c", 0)).text == "waiting for b (every sound card of b that may link with it is linked)");
    // a leaves: b.snd0 is free, but it names a, which may come back: c
    // (one group, c names b) does not take it while a is away.
    auto gone = q.remove_vm("a");
    REQUIRE(gone.down.size() == 1);
    CHECK(gone.down[0].a == ref("b", 0));
    CHECK(gone.up.empty());
    CHECK(q.state(ref("c", 0)).text == "waiting for b (b.snd0 waits for a)");
    // a comes back: b.snd0 is a's again.
    auto back = q.add_vm(vm("a", {card(0, "b")}, "g"));
    REQUIRE(back.plan.up.size() == 1);
    CHECK(joins(back.plan.up[0], ref("a", 0), ref("b", 0)));
}

TEST_CASE("sound: bad cards are refused naming the card, and change nothing", "[crossover][sound][sound-planner]") {
    SoundPlanner p;
    auto refused = [&](SoundVm v, const std::string& what) {
        auto r = p.add_vm(std::move(v));
        REQUIRE(r.error);
        CHECK_THAT(*r.error, Catch::Contains(what));
    };
    refused(vm("a", {card(0, "bad name")}), "sound card 0: its peer is not a valid VM name");
    refused(vm("a", {card(0, "auto")}), "sound card 0: its peer is not a valid VM name");
    refused(vm("a", {card(3, "a")}), "sound card 3: its peer is its own VM 'a'");
    refused(vm("a", {card(1, "b", 22050)}), "sound card 1: 22050 Hz is not a rate");
    refused(vm("a", {card(0, "b", 48000, 0)}), "sound card 0: 0 channels");
    refused(vm("a", {card(0, "b", 48000, 3)}), "sound card 0: 3 channels");
    refused(vm("a", {card(2, "b"), card(2, "c")}), "sound card 2 registered twice");
    refused(vm("a", {card(0, "b"), card(1, "b"), card(2, "b"), card(3, "b"), card(4, "b")}), "5 sound cards, more than 4");
    refused(vm("", {}), "not a valid name");
    CHECK(p.vms().empty());
    REQUIRE_FALSE(p.add_vm(vm("a", {card(0, "b", 44100, 1)})).error);
    refused(vm("a", {}), "already registered");
    CHECK(p.card_count() == 1);
}
