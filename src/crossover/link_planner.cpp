#include "xover/crossover/link_planner.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/vm_name.hpp"

namespace xover::crossover {

namespace {
// Window mode needs one model on both ends: e1000 and virtio-net place a
// frame differently in its buffer (virtio_net_hdr first), so neither can
// take the other's buffer in place, and copying between two windows mapped
// onto each other would overwrite buffers a guest holds.
LinkMode link_mode(const PlannedNic& a, const PlannedNic& b) {
    return a.mode == LinkMode::Window && b.mode == LinkMode::Window && a.model == b.model ? LinkMode::Window
                                                                                        : LinkMode::Copy;
}
}  // namespace

std::optional<std::string> check_peers(std::uint32_t nic, const std::vector<std::string>& peers) {
    if (peers.size() > kMaxPeersPerNic)
        return fmt::format("NIC {} lists {} peers, more than {}", nic, peers.size(), kMaxPeersPerNic);
    for (const auto& peer : peers)
        if (!valid_vm_name(peer)) return fmt::format("NIC {} lists a peer that is not a valid VM name", nic);
    return std::nullopt;
}

bool PlannedNic::lists(const std::string& vm) const { return std::find(peers.begin(), peers.end(), vm) != peers.end(); }

const PlannedNic* PlannedVm::nic(std::uint32_t index) const {
    for (const auto& n : nics)
        if (n.index == index) return &n;
    return nullptr;
}
PlannedNic* PlannedVm::nic(std::uint32_t index) {
    return const_cast<PlannedNic*>(std::as_const(*this).nic(index));
}

Allowance link_consent(const ConsentEnd& a, const ConsentEnd& b, const LinkPolicy& policy) {
    if (a.vm == b.vm || !policy.uids_may_link(a.uid, b.uid)) return Allowance::Never;
    const bool one_file = !a.consent_group.empty() && a.consent_group == b.consent_group;
    if ((a.names_other && b.names_other) || (one_file && (a.names_other || b.names_other))) return Allowance::Static;
    if (!a.auto_peer && !b.auto_peer) return Allowance::Never;
    if (one_file || ((a.auto_peer || a.names_other) && (b.auto_peer || b.names_other))) return Allowance::Auto;
    return Allowance::Never;
}

Allowance LinkPlanner::allowance(const PlannedVm& vm_a, const PlannedNic& a, const PlannedVm& vm_b,
                                 const PlannedNic& b) const {
    if (!a.crossover_enabled() || !b.crossover_enabled()) return Allowance::Never;
    return link_consent(ConsentEnd{vm_a.name, vm_a.uid, vm_a.consent_group, a.lists(vm_b.name), a.auto_peer},
                   ConsentEnd{vm_b.name, vm_b.uid, vm_b.consent_group, b.lists(vm_a.name), b.auto_peer}, policy_);
}

std::string LinkPlanner::waiting_for(const NicRef& ref, const std::string& peer) const {
    const PlannedNic* n = nic(ref);
    auto other = vms_.find(peer);
    if (!n || other == vms_.end() || !n->lists(peer)) return "";
    const PlannedVm& own = vms_.at(ref.vm);
    if (!policy_.uids_may_link(own.uid, other->second.uid)) return "--link-any-uid (it runs as another uid)";
    for (const auto& m : other->second.nics)
        if (allowance(own, *n, other->second, m) != Allowance::Never) return "";
    return "its consent";
}

std::optional<NicRef> LinkPlanner::find_mac(const net::MacAddress& mac) const {
    for (const auto& [name, vm] : vms_)
        for (const auto& n : vm.nics)
            if (n.mac == mac) return NicRef{name, n.index};
    return std::nullopt;
}

const PlannedNic* LinkPlanner::nic(const NicRef& ref) const {
    auto it = vms_.find(ref.vm);
    return it == vms_.end() ? nullptr : it->second.nic(ref.nic);
}

bool LinkPlanner::linked(const NicRef& x, const NicRef& y) const {
    return std::any_of(links_.begin(), links_.end(), [&](const auto& entry) {
        const Link& l = entry.second;
        return (l.a == x && l.b == y) || (l.a == y && l.b == x);
    });
}

LinkPlanner::AddResult LinkPlanner::add_vm(PlannedVm vm) {
    std::string name = vm.name;
    if (auto error = admit_vm(std::move(vm))) return AddResult{std::move(error), {}};
    return AddResult{std::nullopt, static_links(name)};
}

std::optional<std::string> LinkPlanner::admit_vm(PlannedVm vm) {
    if (!valid_vm_name(vm.name)) return "the VM name is not a valid name (letters, digits, '.', '_', '-', at most 64)";
    if (vms_.count(vm.name)) return fmt::format("a VM named '{}' is already registered with the broker", vm.name);
    std::set<std::uint32_t> indices;
    std::set<net::MacAddress> macs;
    for (const auto& n : vm.nics) {
        if (auto error = check_peers(n.index, n.peers)) return error;
        if (!indices.insert(n.index).second) return fmt::format("NIC index {} registered twice", n.index);
        if (n.mac.is_multicast()) return fmt::format("NIC {} has a multicast MAC {}", n.index, n.mac.to_string());
        if (!macs.insert(n.mac).second)
            return fmt::format("MAC {} is used by two NICs of VM '{}'", n.mac.to_string(), vm.name);
        if (auto owner = find_mac(n.mac))
            return fmt::format("MAC {} is already used by VM '{}' (NIC {})", n.mac.to_string(), owner->vm, owner->nic);
    }
    std::string name = vm.name;
    vms_.emplace(name, std::move(vm));
    return std::nullopt;
}

Plan LinkPlanner::static_links(const std::string& name) {
    Plan plan;
    auto it = vms_.find(name);
    if (it == vms_.end()) return plan;
    for (const auto& n : it->second.nics) static_links_of(it->second, n, plan);
    return plan;
}

void LinkPlanner::static_links_of(const PlannedVm& vm, const PlannedNic& n, Plan& plan) {
    for (const auto& [other_name, other] : vms_) {
        if (other_name == vm.name) continue;
        for (const auto& m : other.nics) {
            if (allowance(vm, n, other, m) != Allowance::Static) continue;
            // The other NIC first: a = the one that was there, b = the newcomer (or the changed NIC).
            if (auto link = make_link(NicRef{other_name, m.index}, NicRef{vm.name, n.index}, false))
                plan.up.push_back(*link);
        }
    }
}

LinkPlanner::AddResult LinkPlanner::set_peers(const NicRef& ref, std::vector<std::string> peers,
                                              std::optional<bool> auto_peer) {
    auto vm = vms_.find(ref.vm);
    PlannedNic* n = vm == vms_.end() ? nullptr : vm->second.nic(ref.nic);
    if (!n) return AddResult{fmt::format("VM '{}' has no NIC {}", ref.vm, ref.nic), {}};
    if (auto error = check_peers(ref.nic, peers)) return AddResult{std::move(error), {}};
    n->peers = std::move(peers);
    if (auto_peer) n->auto_peer = *auto_peer;
    AddResult result;
    for (auto it = links_.begin(); it != links_.end();) {
        const Link& l = it->second;
        const bool ours = l.a == ref || l.b == ref;
        if (ours && allowance(vms_.at(l.a.vm), *nic(l.a), vms_.at(l.b.vm), *nic(l.b)) == Allowance::Never)
            it = take_down(it, result.plan);
        else
            ++it;
    }
    static_links_of(vm->second, *n, result.plan);
    return result;
}

std::optional<std::string> LinkPlanner::adopt(Link link) {
    const PlannedNic* na = nic(link.a);
    const PlannedNic* nb = nic(link.b);
    if (!na || !nb) return "it names a NIC that is not registered";
    if (link.id == 0 || link.id >= kMaxLinkId) return fmt::format("link id {} is out of range", link.id);
    if (links_.count(link.id)) return fmt::format("link id {} is taken by another link", link.id);
    if (linked(link.a, link.b)) return "the two NICs are linked already";
    if (allowance(vms_.at(link.a.vm), *na, vms_.at(link.b.vm), *nb) == Allowance::Never)
        return "the two NICs may not be linked";
    if (link.mode != link_mode(*na, *nb)) return fmt::format("{} mode is not the mode these NICs link in", to_string(link.mode));
    if (!reserve_slot(link.a, link.slot_in_a)) return fmt::format("slot {} of {}#{} is taken", link.slot_in_a, link.a.vm, link.a.nic);
    if (!reserve_slot(link.b, link.slot_in_b)) {
        free_slot(link.a, link.slot_in_a);
        return fmt::format("slot {} of {}#{} is taken", link.slot_in_b, link.b.vm, link.b.nic);
    }
    link.adopted = true;
    skip_link_ids_through(link.id);
    links_.emplace(link.id, link);
    return std::nullopt;
}

bool LinkPlanner::reserve_slot(const NicRef& ref, std::uint32_t slot) {
    if (slot >= nic::kMaxProducerSlots) return false;
    std::uint32_t& used = used_slots_[ref];
    if (used & (1u << slot)) return false;
    used |= 1u << slot;
    return true;
}

void LinkPlanner::skip_link_ids_through(std::uint64_t id) {
    if (id < kMaxLinkId) next_link_id_ = std::max(next_link_id_, id + 1);
}

Plan LinkPlanner::remove_vm(const std::string& name) {
    Plan plan;
    if (!vms_.count(name)) return plan;
    for (auto it = links_.begin(); it != links_.end();) {
        const Link& l = it->second;
        if (l.a.vm == name || l.b.vm == name)
            it = take_down(it, plan);
        else
            ++it;
    }
    for (const auto& n : vms_.at(name).nics) used_slots_.erase(NicRef{name, n.index});
    vms_.erase(name);
    return plan;
}

std::map<std::uint64_t, Link>::iterator LinkPlanner::take_down(std::map<std::uint64_t, Link>::iterator it, Plan& plan) {
    const Link& l = it->second;
    free_slot(l.a, l.slot_in_a);
    free_slot(l.b, l.slot_in_b);
    plan.down.push_back(l);
    return links_.erase(it);
}

Plan LinkPlanner::frame_seen(const std::string& vm, std::uint32_t nic_index, const net::MacAddress& dst) {
    Plan plan;
    if (dst.is_multicast()) return plan;  // broadcast/multicast stay on the slow path
    NicRef src{vm, nic_index};
    const PlannedNic* s = nic(src);
    if (!s) return plan;
    auto target = find_mac(dst);
    if (!target || target->vm == vm) return plan;
    const PlannedNic* t = nic(*target);
    Allowance allowed = allowance(vms_.at(vm), *s, vms_.at(target->vm), *t);
    if (allowed == Allowance::Never || linked(src, *target)) return plan;
    if (auto link = make_link(src, *target, allowed == Allowance::Auto)) plan.up.push_back(*link);
    return plan;
}

std::optional<Link> LinkPlanner::make_link(const NicRef& a, const NicRef& b, bool automatic) {
    if (linked(a, b)) return std::nullopt;
    auto slot_a = take_slot(a);
    if (!slot_a) return std::nullopt;
    auto slot_b = take_slot(b);
    if (!slot_b) {
        free_slot(a, *slot_a);
        return std::nullopt;
    }
    const PlannedNic* na = nic(a);
    const PlannedNic* nb = nic(b);
    Link link;
    link.id = next_link_id_++;
    link.a = a;
    link.b = b;
    link.mode = link_mode(*na, *nb);
    link.automatic = automatic;
    link.slot_in_a = *slot_a;
    link.slot_in_b = *slot_b;
    links_.emplace(link.id, link);
    return link;
}

std::optional<std::uint32_t> LinkPlanner::take_slot(const NicRef& ref) {
    for (std::uint32_t i = 0; i < nic::kMaxProducerSlots; ++i)
        if (reserve_slot(ref, i)) return i;
    return std::nullopt;
}

void LinkPlanner::free_slot(const NicRef& ref, std::uint32_t slot) {
    auto it = used_slots_.find(ref);
    if (it != used_slots_.end()) it->second &= ~(1u << slot);
}

}  // namespace xover::crossover
