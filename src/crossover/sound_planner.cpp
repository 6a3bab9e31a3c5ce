#include "xover/crossover/sound_planner.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "xover/vm_name.hpp"

namespace xover::crossover {

std::string card_name(const CardRef& ref) { return fmt::format("{}.snd{}", ref.vm, ref.card); }

std::string sound_format_text(std::uint32_t rate, std::uint32_t channels) {
    return fmt::format("{} Hz, {} channel{}", rate, channels, channels == 1 ? "" : "s");
}

std::string_view to_string(SoundCardState::Kind kind) {
    switch (kind) {
        case SoundCardState::Kind::Linked: return "linked";
        case SoundCardState::Kind::Refused: return "refused";
        case SoundCardState::Kind::Waiting: break;
    }
    return "waiting";
}

const PlannedSound* SoundVm::card(std::uint32_t index) const {
    for (const auto& c : cards)
        if (c.index == index) return &c;
    return nullptr;
}

std::optional<std::string> SoundPlanner::check(const SoundVm& vm) {
    if (!valid_vm_name(vm.name)) return "the VM name is not a valid name (letters, digits, '.', '_', '-', at most 64)";
    if (vm.cards.size() > kMaxSoundsPerVm)
        return fmt::format("{} sound cards, more than {}", vm.cards.size(), kMaxSoundsPerVm);
    std::set<std::uint32_t> indices;
    for (const auto& c : vm.cards) {
        if (!indices.insert(c.index).second) return fmt::format("sound card {} registered twice", c.index);
        if (!valid_vm_name(c.peer)) return fmt::format("sound card {}: its peer is not a valid VM name", c.index);
        if (c.peer == vm.name) return fmt::format("sound card {}: its peer is its own VM '{}'", c.index, vm.name);
        if (c.rate != 44100 && c.rate != 48000)
            return fmt::format("sound card {}: {} Hz is not a rate a sound link carries (44100 or 48000)", c.index,
                               c.rate);
        if (c.channels != 1 && c.channels != 2)
            return fmt::format("sound card {}: {} channels (a sound link carries 1 or 2)", c.index, c.channels);
    }
    return std::nullopt;
}

SoundPlanner::AddResult SoundPlanner::add_vm(SoundVm vm) {
    if (auto error = check(vm)) return AddResult{std::move(error), {}};
    if (vms_.count(vm.name))
        return AddResult{fmt::format("a VM named '{}' is already registered with the broker", vm.name), {}};
    std::sort(vm.cards.begin(), vm.cards.end(), [](const auto& x, const auto& y) { return x.index < y.index; });
    std::string name = vm.name;
    vms_.emplace(std::move(name), std::move(vm));
    AddResult result;
    plan_links(result.plan);
    return result;
}

SoundPlan SoundPlanner::remove_vm(const std::string& name) {
    SoundPlan plan;
    auto vm = vms_.find(name);
    if (vm == vms_.end()) return plan;
    for (const auto& c : vm->second.cards) {
        const CardRef gone{name, c.index};
        auto link = links_.find(gone);
        if (link == links_.end()) continue;
        const CardRef survivor = link->second;
        links_.erase(survivor);
        links_.erase(link);
        plan.down.push_back({survivor, gone, fmt::format("{} went away", name)});
    }
    std::erase_if(refusals_, [&](const SoundUnlink& r) { return r.a.vm == name || r.b.vm == name; });
    vms_.erase(vm);
    plan_links(plan);  // the cards it freed may link with cards that waited for them
    return plan;
}

const PlannedSound* SoundPlanner::card(const CardRef& ref) const {
    auto vm = vms_.find(ref.vm);
    return vm == vms_.end() ? nullptr : vm->second.card(ref.card);
}

std::optional<CardRef> SoundPlanner::linked_to(const CardRef& ref) const {
    auto it = links_.find(ref);
    if (it == links_.end()) return std::nullopt;
    return it->second;
}

std::size_t SoundPlanner::card_count() const {
    std::size_t n = 0;
    for (const auto& [name, vm] : vms_) n += vm.cards.size();
    return n;
}

std::vector<SoundLink> SoundPlanner::links() const {
    std::vector<SoundLink> out;
    for (const auto& [x, y] : links_)
        if (x < y) out.push_back({x, y});
    return out;
}

bool SoundPlanner::may_link(const SoundVm& x_vm, const PlannedSound& x, const SoundVm& y_vm,
                            const PlannedSound& y) const {
    return link_consent(ConsentEnd{x_vm.name, x_vm.uid, x_vm.consent_group, x.peer == y_vm.name},
                        ConsentEnd{y_vm.name, y_vm.uid, y_vm.consent_group, y.peer == x_vm.name},
                        policy_) == Allowance::Static;
}

bool SoundPlanner::refused(const CardRef& x, const CardRef& y) const {
    const CardRef& lo = std::min(x, y);
    const CardRef& hi = std::max(x, y);
    return std::any_of(refusals_.begin(), refusals_.end(),
                       [&](const SoundUnlink& r) { return r.a == lo && r.b == hi; });
}

std::vector<CardRef> SoundPlanner::candidates(const SoundVm& x_vm, const PlannedSound& x, Tier tier) const {
    const CardRef self{x_vm.name, x.index};
    std::vector<CardRef> named, others;  // cards of the VM x names; cards of other VMs that name x's
    for (const auto& [name, y_vm] : vms_) {
        if (name == x_vm.name) continue;
        for (const auto& y : y_vm.cards) {
            const CardRef ref{name, y.index};
            if (links_.count(ref) || refused(self, ref) || !may_link(x_vm, x, y_vm, y)) continue;
            const bool mutual = x.peer == name && y.peer == x_vm.name;
            if ((tier == Tier::Mutual && !mutual) || (tier == Tier::OneSided && mutual)) continue;
            // One-sided (one consent group): an end that names a third VM
            // is not taken while that VM may still come and name it back.
            if (!mutual && ((x.peer != name && !vms_.count(x.peer)) || (y.peer != x_vm.name && !vms_.count(y.peer))))
                continue;
            (x.peer == name ? named : others).push_back(ref);
        }
    }
    // Among x's named VM's cards, those that name x's VM back first (Any);
    // each group in index order (the map and the sorted cards give that).
    std::stable_partition(named.begin(), named.end(), [&](const CardRef& r) { return card(r)->peer == x_vm.name; });
    named.insert(named.end(), others.begin(), others.end());
    return named;
}

void SoundPlanner::plan_links(SoundPlan& plan) {
    auto same_format = [](const PlannedSound& x, const PlannedSound& y) {
        return x.rate == y.rate && x.channels == y.channels;
    };
    // Mutual pairs first, so a one-sided pairing (consent group) never
    // takes a card that names its peer and is named back.
    for (Tier tier : {Tier::Mutual, Tier::OneSided}) {
        for (const auto& [name, x_vm] : vms_) {
            for (const auto& x : x_vm.cards) {
                const CardRef self{name, x.index};
                if (links_.count(self)) continue;
                for (const CardRef& other : candidates(x_vm, x, tier)) {
                    if (!same_format(x, *card(other))) continue;
                    links_[self] = other;
                    links_[other] = self;
                    plan.up.push_back({self, other});
                    break;
                }
            }
        }
    }
    // Whatever the rules would still link differs in format: refused, once a pair.
    for (const auto& [name, x_vm] : vms_) {
        for (const auto& x : x_vm.cards) {
            const CardRef self{name, x.index};
            if (links_.count(self)) continue;
            for (const CardRef& other : candidates(x_vm, x, Tier::Any)) {
                const PlannedSound& y = *card(other);
                if (same_format(x, y)) continue;
                const CardRef& lo = std::min(self, other);
                const CardRef& hi = std::max(self, other);
                const PlannedSound& lo_card = lo == self ? x : y;
                const PlannedSound& hi_card = lo == self ? y : x;
                SoundUnlink r{lo, hi,
                              fmt::format("{} ({}) and {} ({}) differ: the link is refused", card_name(lo),
                                          sound_format_text(lo_card.rate, lo_card.channels), card_name(hi),
                                          sound_format_text(hi_card.rate, hi_card.channels))};
                refusals_.push_back(r);
                plan.refused.push_back(std::move(r));
            }
        }
    }
}

SoundCardState SoundPlanner::state(const CardRef& ref) const {
    SoundCardState s;
    auto vm = vms_.find(ref.vm);
    const PlannedSound* c = vm == vms_.end() ? nullptr : vm->second.card(ref.card);
    if (!c) return s;
    if (auto other = linked_to(ref)) {
        s.kind = SoundCardState::Kind::Linked;
        s.linked_to = *other;
        s.text = "linked to " + card_name(*other);
        return s;
    }
    for (auto r = refusals_.rbegin(); r != refusals_.rend(); ++r) {
        if (r->a == ref || r->b == ref) {
            s.kind = SoundCardState::Kind::Refused;
            s.text = "refused: " + r->reason;
            return s;
        }
    }
    s.text = "waiting for " + c->peer;
    auto peer = vms_.find(c->peer);
    if (peer == vms_.end()) return s;  // not registered (yet)
    if (!policy_.uids_may_link(vm->second.uid, peer->second.uid)) {
        s.text += " (--link-any-uid: it runs as another uid)";
        return s;
    }
    bool consenting = false;
    for (const auto& y : peer->second.cards) {
        if (!may_link(vm->second, *c, peer->second, y)) continue;
        consenting = true;
        if (!links_.count(CardRef{c->peer, y.index})) {
            // Free, but kept for the VM it names (one-sided, consent group).
            s.text += fmt::format(" ({} waits for {})", card_name(CardRef{c->peer, y.index}), y.peer);
            return s;
        }
    }
    if (!consenting)
        s.text += fmt::format(" (its consent: no sound card of {} names {})", c->peer, ref.vm);
    else
        s.text += fmt::format(" (every sound card of {} that may link with it is linked)", c->peer);
    return s;
}

}  // namespace xover::crossover
