// The broker's decisions about sound cards, as a pure class: which card's
// output is wired to which card's input (the cable, sound/cable.hpp, is
// the receiving card's "inbox" memfd; the broker hands each end of a link
// the other card's inbox). No sockets or fds here, so every rule is unit
// tested; BrokerState holds the fds and sends the messages.
//
// The rules are the NICs' static rules (link_planner.hpp, link_consent()):
// card x of VM X, whose peer is Y, and card y of VM Y may be linked when
//   - y's peer is X (both name each other), or
//   - X and Y share a consent group (one `xover up` file) and at least one
//     of the two cards names the other's VM;
// never between two uids unless LinkPolicy::any_uid. A card links with at
// most one other card. Among the cards of Y that may link with x, a card
// that names X back comes first, then the lowest index. A card keeps its
// named peer when it can: links where both name each other are made before
// one-sided ones (consent group), and a one-sided link never takes a card
// that names a third VM while that VM is not registered (it may still come
// and name the card back).
//
// Both cards must play one format (rate and channels): two cards the rules
// would link whose formats differ are refused: both are told once, with a
// reason naming both cards and formats, and the pair is not tried again
// until one of the two VMs registers again.
//
// Links are made when the second card registers (either order) and when a
// departure frees a card another one waits for; a VM that leaves takes its
// links down (its peers are told "<vm> went away"). A VM registering again
// after a broker restart is planned like any other: no adoption protocol
// (the VM keeps a link whose SoundLinkUp names the same peer and inbox).
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xover/crossover/link_planner.hpp"

namespace xover::crossover {

struct CardRef {
    std::string vm;
    std::uint32_t card = 0;
    auto operator<=>(const CardRef&) const = default;
};
// "a.snd0": how logs, reasons and status name a card.
std::string card_name(const CardRef& ref);
// "48000 Hz, 2 channels", "44100 Hz, 1 channel".
std::string sound_format_text(std::uint32_t rate, std::uint32_t channels);

struct PlannedSound {
    std::uint32_t index = 0;
    std::string peer;  // the VM it names
    std::uint32_t rate = 0;
    std::uint32_t channels = 0;
};

struct SoundVm {
    std::string name;
    std::uint32_t uid = 0;      // the registering process's (SO_PEERCRED)
    std::string consent_group;  // one `xover up` run; "" for none
    std::vector<PlannedSound> cards;
    const PlannedSound* card(std::uint32_t index) const;
};

struct SoundLink {
    CardRef a, b;
};

struct SoundUnlink {
    CardRef a, b;  // down: a is still registered, b was its peer card; refused: both are told
    std::string reason;
};

struct SoundPlan {
    std::vector<SoundLink> up;
    std::vector<SoundUnlink> down;
    std::vector<SoundUnlink> refused;
    bool empty() const { return up.empty() && down.empty() && refused.empty(); }
};

// What `xover status` says about a card.
struct SoundCardState {
    enum class Kind { Linked, Waiting, Refused };
    Kind kind = Kind::Waiting;
    std::optional<CardRef> linked_to;  // Kind::Linked
    // "linked to b.snd0", "waiting for b", "waiting for b (its consent: ...)", "refused: REASON"
    std::string text;
};
std::string_view to_string(SoundCardState::Kind kind);  // "linked", "waiting", "refused"

class SoundPlanner {
public:
    explicit SoundPlanner(LinkPolicy policy = {}) : policy_(policy) {}

    // Why VM `vm`'s cards may not be registered, naming the card (an
    // invalid VM name or peer, a card naming its own VM, a rate other than
    // 44100 or 48000, channels other than 1 or 2, an index twice, more than
    // kMaxSoundsPerVm cards), or nothing.
    static std::optional<std::string> check(const SoundVm& vm);

    struct AddResult {
        std::optional<std::string> error;  // set: refused, nothing changed
        SoundPlan plan;
    };
    // Registers a VM (with or without cards: a VM without cards is still a
    // peer others can be told they wait for); refuses what check() refuses
    // and a name registered already. Returns the links (and refusals) that
    // can be decided now.
    AddResult add_vm(SoundVm vm);
    // The VM left: its links go down (plan.down, to the cards still here)
    // and the cards they freed may link with others (plan.up). Refusals
    // that involved it are forgotten.
    SoundPlan remove_vm(const std::string& name);

    const PlannedSound* card(const CardRef& ref) const;
    std::optional<CardRef> linked_to(const CardRef& ref) const;
    SoundCardState state(const CardRef& ref) const;

    const std::map<std::string, SoundVm>& vms() const { return vms_; }
    std::size_t card_count() const;
    // Each link once, a < b.
    std::vector<SoundLink> links() const;

private:
    enum class Tier { Mutual, OneSided, Any };
    bool may_link(const SoundVm& x_vm, const PlannedSound& x, const SoundVm& y_vm, const PlannedSound& y) const;
    // The free cards card x may link with now, best first (see the top of
    // this file), leaving out pairs refused already.
    std::vector<CardRef> candidates(const SoundVm& x_vm, const PlannedSound& x, Tier tier) const;
    void plan_links(SoundPlan& plan);
    bool refused(const CardRef& x, const CardRef& y) const;

    LinkPolicy policy_;
    std::map<std::string, SoundVm> vms_;
    std::map<CardRef, CardRef> links_;  // both directions
    // Pairs refused (key: the smaller card first), in the order refused.
    std::vector<SoundUnlink> refusals_;
};

}  // namespace xover::crossover
