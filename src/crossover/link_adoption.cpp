#include "xover/crossover/link_adoption.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/vm_name.hpp"

namespace xover::crossover {

namespace {

// `l`, reported by `vm`, and `other`'s report describe one link seen from
// its two ends.
bool mirrors(const std::string& vm, const LiveLink& l, const std::string& other_vm, const LiveLink& other) {
    return l.link_id == other.link_id && l.peer_vm == other_vm && other.peer_vm == vm &&
           l.peer_nic == other.local_nic && other.peer_nic == l.local_nic && l.mode == other.mode &&
           l.automatic == other.automatic && l.producer_slot == other.peer_producer_slot &&
           l.peer_producer_slot == other.producer_slot;
}

}  // namespace

std::optional<std::string> LinkAdoption::check(const LinkPlanner& planner, const std::string& vm,
                                               const LiveLink& l) const {
    if (l.link_id == 0 || l.link_id >= kMaxLinkId) return fmt::format("link id {} is out of range", l.link_id);
    if (!valid_vm_name(l.peer_vm) || l.peer_vm == vm) return "it names no valid peer VM";
    const PlannedNic* local = planner.nic(NicRef{vm, l.local_nic});
    if (!local || !local->crossover_enabled()) return fmt::format("NIC {} has no crossover", l.local_nic);
    if (l.producer_slot >= nic::kMaxProducerSlots || l.peer_producer_slot >= nic::kMaxProducerSlots)
        return "a producer slot is out of range";
    return std::nullopt;
}

LinkAdoption::Outcome LinkAdoption::reported(LinkPlanner& planner, const std::string& vm,
                                             const std::vector<LiveLink>& links, Clock::time_point now) {
    Outcome out;
    std::set<std::uint64_t> ids;
    for (const LiveLink& l : links) {
        Waiting mine{vm, l, now + grace_};
        auto refuse_mine = [&](std::string reason) {
            out.refused.push_back({NicRef{vm, l.local_nic}, l.link_id, std::move(reason)});
        };
        if (!ids.insert(l.link_id).second) {
            refuse_mine("reported twice");
            continue;
        }
        if (auto why = check(planner, vm, l)) {
            refuse_mine(*why);
            continue;
        }
        auto other = std::find_if(waiting_.begin(), waiting_.end(),
                                  [&](const Waiting& w) { return w.link.link_id == l.link_id; });
        if (other != waiting_.end()) {
            Waiting w = std::move(*other);
            waiting_.erase(other);
            match(planner, vm, l, std::move(w), out);
            continue;
        }
        if (planner.vms().count(l.peer_vm)) {
            refuse_mine(fmt::format("VM '{}' registered without it", l.peer_vm));
            continue;
        }
        if (planner.links().count(l.link_id)) {
            refuse_mine(fmt::format("link id {} is taken by another link", l.link_id));
            continue;
        }
        // The other end is not back yet: hold what the link uses until it is.
        if (!planner.reserve_slot(NicRef{vm, l.local_nic}, l.peer_producer_slot)) {
            refuse_mine(fmt::format("slot {} of NIC {} is taken", l.peer_producer_slot, l.local_nic));
            continue;
        }
        planner.skip_link_ids_through(l.link_id);
        waiting_.push_back(std::move(mine));
    }
    // Whoever waits for this VM and was not answered: it came back without
    // the link (it restarted), so that end is dead.
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->link.peer_vm != vm) {
            ++it;
            continue;
        }
        out.refused.push_back(refuse(planner, *it, fmt::format("VM '{}' registered without it", vm)));
        it = waiting_.erase(it);
    }
    return out;
}

void LinkAdoption::match(LinkPlanner& planner, const std::string& vm, const LiveLink& l, Waiting other,
                         Outcome& out) {
    planner.release_slot(NicRef{other.vm, other.link.local_nic}, other.link.peer_producer_slot);
    auto refuse_both = [&](const std::string& reason) {
        out.refused.push_back({NicRef{vm, l.local_nic}, l.link_id, reason});
        out.refused.push_back({NicRef{other.vm, other.link.local_nic}, other.link.link_id, reason});
    };
    if (!mirrors(vm, l, other.vm, other.link)) {
        refuse_both(fmt::format("VMs '{}' and '{}' report link {} differently", other.vm, vm, l.link_id));
        return;
    }
    // a = the end that was back first, b = this one; slot_in_x is the slot
    // the other end uses in x's page.
    Link link;
    link.id = l.link_id;
    link.a = NicRef{other.vm, other.link.local_nic};
    link.b = NicRef{vm, l.local_nic};
    link.mode = l.mode;
    link.automatic = l.automatic;
    link.slot_in_a = l.producer_slot;
    link.slot_in_b = other.link.producer_slot;
    if (auto why = planner.adopt(link)) {
        refuse_both(*why);
        return;
    }
    out.adopted.push_back(planner.links().at(link.id));
}

LinkAdoption::Refused LinkAdoption::refuse(LinkPlanner& planner, const Waiting& w, std::string reason) {
    planner.release_slot(NicRef{w.vm, w.link.local_nic}, w.link.peer_producer_slot);
    return Refused{NicRef{w.vm, w.link.local_nic}, w.link.link_id, std::move(reason)};
}

LinkAdoption::Outcome LinkAdoption::expire(LinkPlanner& planner, Clock::time_point now) {
    Outcome out;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->deadline > now) {
            ++it;
            continue;
        }
        out.refused.push_back(refuse(planner, *it,
                                     fmt::format("VM '{}' did not register again within {} ms",
                                                 it->link.peer_vm, grace_.count())));
        it = waiting_.erase(it);
    }
    return out;
}

void LinkAdoption::vm_gone(LinkPlanner& planner, const std::string& vm) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->vm != vm) {
            ++it;
            continue;
        }
        planner.release_slot(NicRef{it->vm, it->link.local_nic}, it->link.peer_producer_slot);
        it = waiting_.erase(it);
    }
}

std::optional<LinkAdoption::Clock::time_point> LinkAdoption::next_deadline() const {
    std::optional<Clock::time_point> next;
    for (const auto& w : waiting_)
        if (!next || w.deadline < *next) next = w.deadline;
    return next;
}

}  // namespace xover::crossover
