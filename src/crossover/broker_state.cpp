#include "xover/crossover/broker_state.hpp"

#include <fcntl.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>


namespace xover::crossover {

namespace {

kvm::UniqueFd dup_fd(const kvm::UniqueFd& fd) {
    if (!fd) return {};
    kvm::UniqueFd copy(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!copy) spdlog::warn("broker: dup of fd {} failed: {}", fd.get(), std::strerror(errno));
    return copy;
}

// Checks the fds of a crossover NIC before anyone maps them. Returns an
// error message, or "" when fine.
std::string check_nic_fds(const NicRegistration& nic) {
    auto check_memfd = [&](const kvm::UniqueFd& fd, std::uint64_t size, const char* what) -> std::string {
        if (!fd) return fmt::format("NIC {}: no {} memfd", nic.index, what);
        if (size == 0) return fmt::format("NIC {}: {} size is 0", nic.index, what);
        std::uint64_t actual;
        try {
            actual = memfd_size(fd.get());
        } catch (const Error& e) {
            return fmt::format("NIC {}: {} fd: {}", nic.index, what, e.what());
        }
        if (actual < size) return fmt::format("NIC {}: {} memfd is {} bytes, {} declared", nic.index, what, actual, size);
        if (!memfd_shrink_sealed(fd.get()))
            return fmt::format("NIC {}: {} memfd is not sealed against shrinking (F_SEAL_SHRINK)", nic.index, what);
        return "";
    };
    if (auto e = check_memfd(nic.ram, nic.ram_size, "guest RAM"); !e.empty()) return e;
    if (auto e = check_memfd(nic.state, nic::kSharedStateSize, "shared state"); !e.empty()) return e;
    if (nic.mode == LinkMode::Window) {
        if (auto e = check_memfd(nic.window, nic.window_size, "DMA window"); !e.empty()) return e;
        if (auto e = check_memfd(nic.rings, nic.rings_size, "ring area"); !e.empty()) return e;
        if (nic.rings_size > kMaxRingAreaSize)
            return fmt::format("NIC {}: ring area of {} bytes exceeds {}", nic.index, nic.rings_size, kMaxRingAreaSize);
    }
    if (!nic.irq) return fmt::format("NIC {}: no irq eventfd", nic.index);
    if (!nic.doorbell) return fmt::format("NIC {}: no doorbell eventfd", nic.index);
    return "";
}

// Checks a sound card's inbox before a peer maps it. Returns an error
// message, or "" when fine.
std::string check_inbox(const SoundRegistration& sound) {
    if (!sound.inbox) return fmt::format("sound card {}: no inbox memfd", sound.index);
    std::uint64_t size;
    try {
        size = memfd_size(sound.inbox.get());
    } catch (const Error& e) {
        return fmt::format("sound card {}: inbox fd: {}", sound.index, e.what());
    }
    if (size == 0) return fmt::format("sound card {}: inbox memfd is empty", sound.index);
    if (!memfd_shrink_sealed(sound.inbox.get()))
        return fmt::format("sound card {}: inbox memfd is not sealed against shrinking (F_SEAL_SHRINK)", sound.index);
    return "";
}

// A client's string as it may be logged before it was validated.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

std::string crossover_config(const PlannedNic& n) {
    if (n.auto_peer) return n.peers.empty() ? "auto" : fmt::format("auto,{}", fmt::join(n.peers, ","));
    return n.peers.empty() ? "-" : fmt::format("{}", fmt::join(n.peers, ","));
}

}  // namespace

const std::string* BrokerState::vm_of(ClientId client) const {
    auto it = client_vm_.find(client);
    return it == client_vm_.end() ? nullptr : &it->second;
}

const BrokerState::Nic* BrokerState::find_nic(const NicRef& ref) const {
    auto vm = vms_.find(ref.vm);
    if (vm == vms_.end()) return nullptr;
    auto nic = vm->second.nics.find(ref.nic);
    return nic == vm->second.nics.end() ? nullptr : &nic->second;
}

BrokerState::Result BrokerState::handle(ClientId from, Message message) {
    Result result;
    auto who = credentials_.find(from);
    if (who == credentials_.end() || !admits(who->second)) {
        // SO_PEERCRED decides, whatever the message claims.
        std::uint32_t uid = who == credentials_.end() ? ~0u : who->second.uid;
        spdlog::warn("broker: refused a {} from uid {} (only uid {} and root may use this broker)",
                     message_name(message), uid, policy_.owner_uid);
        if (std::holds_alternative<Register>(message))
            result.send.push_back({from, RegisterError{fmt::format(
                                             "this broker serves uid {} only (it runs as that user)", policy_.owner_uid)}});
        result.close_client = true;
        return result;
    }
    if (auto* reg = std::get_if<Register>(&message)) return on_register(from, std::move(*reg));
    const bool from_vm = std::holds_alternative<FrameSeen>(message) || std::holds_alternative<SetPeers>(message);
    const std::string* vm = vm_of(from);
    if (from_vm && !vm) {
        spdlog::warn("broker: {} from an unregistered client; closing it", message_name(message));
        result.close_client = true;
        return result;
    }
    if (auto* seen = std::get_if<FrameSeen>(&message)) {
        Plan plan = planner_.frame_seen(*vm, seen->nic, seen->dst);
        result.send = apply(plan, "");
        return result;
    }
    if (auto* set = std::get_if<SetPeers>(&message)) {
        result.send = on_set_peers(*vm, std::move(*set));
        return result;
    }
    if (auto* req = std::get_if<StatusRequest>(&message)) {
        std::string text = req->json ? status_json() : status_text();
        if (text.size() > kMaxPayloadSize - 64) text.resize(kMaxPayloadSize - 64);
        result.send.push_back({from, StatusReply{std::move(text)}});
        return result;
    }
    spdlog::warn("broker: unexpected {} message from a client; closing it", message_name(message));
    result.close_client = true;
    return result;
}

BrokerState::Result BrokerState::on_register(ClientId from, Register reg) {
    Result result;
    const PeerCredentials& creds = credentials_.at(from);  // handle() checked
    auto refuse = [&](std::string reason) {
        spdlog::info("broker: refused VM '{}' (pid {}): {}", printable(reg.vm_name), creds.pid, reason);
        result.send.push_back({from, RegisterError{std::move(reason)}});
        return std::move(result);
    };
    if (const std::string* existing = vm_of(from))
        return refuse(fmt::format("this connection already registered VM '{}'", *existing));

    PlannedVm planned{reg.vm_name, {}, creds.uid, reg.consent_group};
    Vm vm;
    vm.client = from;
    vm.pid = creds.pid;
    for (auto& nic : reg.nics) {
        PlannedNic p{nic.index, nic.mac, nic.model, nic.peers, nic.auto_peer, nic.mode};
        Nic entry;
        entry.reg = std::move(nic);
        if (p.crossover_enabled())
            if (auto e = map_for_crossover(entry); !e.empty()) return refuse(e);
        planned.nics.push_back(std::move(p));
        std::uint32_t index = entry.reg.index;
        vm.nics.emplace(index, std::move(entry));  // duplicates are refused by the planner below
    }

    SoundVm sound_vm{reg.vm_name, creds.uid, reg.consent_group, {}};
    for (const auto& sound : reg.sounds)
        sound_vm.cards.push_back(PlannedSound{sound.index, sound.peer, sound.rate, sound.channels});
    if (auto error = SoundPlanner::check(sound_vm)) return refuse(*error);
    for (auto& sound : reg.sounds) {
        if (auto e = check_inbox(sound); !e.empty()) return refuse(e);
        std::uint32_t index = sound.index;
        vm.sounds.emplace(index, std::move(sound));  // indices are unique (checked above)
    }

    if (auto error = planner_.admit_vm(std::move(planned))) return refuse(*error);
    spdlog::info("broker: VM '{}' (pid {}, uid {}) registered with {} NIC(s){}{}", reg.vm_name, creds.pid, creds.uid,
                 vm.nics.size(), vm.sounds.empty() ? "" : fmt::format(" and {} sound card(s)", vm.sounds.size()),
                 reg.earlier_registrations
                     ? fmt::format(", again (registration {}, {} live link(s))", reg.earlier_registrations + 1,
                                   reg.links.size())
                     : "");
    vm.earlier_registrations = reg.earlier_registrations;
    vm.registered_at = std::chrono::system_clock::now();
    ++history_.registrations;
    if (reg.earlier_registrations) ++history_.re_registrations;
    client_vm_[from] = reg.vm_name;
    vms_.emplace(reg.vm_name, std::move(vm));
    // Its live links first: adopted ones must not be made again below.
    auto adopted = adoption_.reported(planner_, reg.vm_name, reg.links, clock_());
    for (const Link& l : adopted.adopted) {
        ++history_.links_adopted;
        spdlog::info("broker: link {} adopted: {}#{} <-> {}#{} ({}, {})", l.id, l.a.vm, l.a.nic, l.b.vm, l.b.nic,
                     to_string(l.mode), l.automatic ? "auto" : "static");
    }
    for (auto& out : refuse_links(adopted)) result.send.push_back(std::move(out));
    for (auto& out : apply(planner_.static_links(reg.vm_name), "")) result.send.push_back(std::move(out));
    // Its sound cards: planned afresh, also after a restart (the VM keeps a
    // link whose SoundLinkUp names the same peer card and inbox).
    auto sounds = sound_planner_.add_vm(std::move(sound_vm));
    if (sounds.error)  // cannot happen: checked above, and the name is unique (admit_vm)
        spdlog::error("broker: VM '{}': sound cards not planned: {}", reg.vm_name, *sounds.error);
    for (auto& out : apply_sounds(sounds.plan)) result.send.push_back(std::move(out));
    if (reg.earlier_registrations) {
        // Registered again after a restart: a card not linked now may have
        // been linked with a card that died while no broker ran.
        for (const auto& [index, sound] : vms_.at(reg.vm_name).sounds)
            if (!sound_planner_.linked_to(CardRef{reg.vm_name, index}))
                sound_grace_[CardRef{reg.vm_name, index}] = clock_() + adoption_grace_;
    }
    // Last: the VM has its links when it reads this (BrokerClient::register_vm).
    result.send.push_back({from, RegisterOk{}});
    return result;
}

// A NIC takes part in crossover: its fds are checked and its state page
// mapped (for counters and fresh slots), before any peer maps them.
std::string BrokerState::map_for_crossover(Nic& nic) {
    if (nic.state) return "";
    if (auto e = check_nic_fds(nic.reg); !e.empty()) return e;
    try {
        nic.state = SharedMapping(nic.reg.state.get(), nic::kSharedStateSize);
    } catch (const Error& e) {
        return fmt::format("NIC {}: shared state page: {}", nic.reg.index, e.what());
    }
    auto* state = reinterpret_cast<const nic::SharedNicState*>(nic.state.data());
    if (!state->valid()) {
        nic.state.reset();
        return fmt::format("NIC {}: shared state page is not initialised", nic.reg.index);
    }
    return "";
}

std::vector<Outgoing> BrokerState::on_set_peers(const std::string& vm, SetPeers set) {
    const NicRef ref{vm, set.nic};
    auto refuse = [&](const std::string& reason) {
        spdlog::warn("broker: VM '{}' may not set the peers of NIC {}: {}; nothing changed", vm, set.nic, reason);
        return std::vector<Outgoing>{};
    };
    auto nic = vms_.at(vm).nics.find(set.nic);
    if (nic == vms_.at(vm).nics.end()) return refuse("it registered no such NIC");
    // A NIC registered with no crossover (no peers, not auto) may take
    // part now: check and map its fds as a registration would have.
    if (!set.peers.empty() || set.auto_peer)
        if (auto e = map_for_crossover(nic->second); !e.empty()) return refuse(e);
    const std::string before = crossover_config(*planner_.nic(ref));
    auto changed = planner_.set_peers(ref, std::move(set.peers), set.auto_peer);
    if (changed.error) return refuse(*changed.error);
    spdlog::info("broker: VM '{}' NIC {} peers: {} (were {}); {} link(s) down, {} up", vm, ref.nic,
                 crossover_config(*planner_.nic(ref)), before, changed.plan.down.size(), changed.plan.up.size());
    return apply(changed.plan, fmt::format("VM '{}' changed the peers of NIC {}", vm, ref.nic));
}

std::vector<Outgoing> BrokerState::client_gone(ClientId from) {
    credentials_.erase(from);
    auto it = client_vm_.find(from);
    if (it == client_vm_.end()) return {};
    std::string name = it->second;
    client_vm_.erase(it);
    adoption_.vm_gone(planner_, name);
    Plan plan = planner_.remove_vm(name);
    SoundPlan sounds = sound_planner_.remove_vm(name);
    spdlog::info("broker: VM '{}' left; {} link(s) down{}", name, plan.down.size(),
                 sounds.down.empty() ? "" : fmt::format(", {} sound link(s) down", sounds.down.size()));
    auto out = apply(plan, fmt::format("VM '{}' left", name));
    for (auto& o : apply_sounds(sounds)) out.push_back(std::move(o));
    std::erase_if(sound_grace_, [&](const auto& entry) { return entry.first.vm == name; });
    vms_.erase(name);  // closes its fds and unmaps its state pages (peers keep their own mappings)
    return out;
}

std::vector<Outgoing> BrokerState::frame_switched(const net::MacAddress& src, const net::MacAddress& dst) {
    auto from = planner_.find_mac(src);
    if (!from) return {};
    return apply(planner_.frame_seen(from->vm, from->nic, dst), "");
}

Outgoing BrokerState::link_up_for(const Link& link, const NicRef& local, const NicRef& peer, std::uint32_t slot,
                                  std::uint32_t peer_slot) const {
    const Nic& p = *find_nic(peer);
    LinkUp up;
    up.link_id = link.id;
    up.local_nic = local.nic;
    up.peer_vm = peer.vm;
    up.peer_nic = peer.nic;
    up.peer_mac = p.reg.mac;
    up.peer_model = p.reg.model;
    up.mode = link.mode;
    up.automatic = link.automatic;
    up.producer_slot = slot;
    up.peer_producer_slot = peer_slot;
    // Least sharing: a window link moves frames only through the peer's
    // window, its ring area and its state page, so the peer's RAM stays
    // home (a driver that keeps rings or RX buffers elsewhere has its
    // frames dropped, as a device behind an IOMMU would). A copy link
    // reads and writes wherever the peer's guest put its buffers: RAM.
    if (link.mode != LinkMode::Window) {
        up.peer_ram_size = p.reg.ram_size;
        up.peer_ram = dup_fd(p.reg.ram);
    }
    up.peer_window_size = p.reg.window_size;
    up.peer_state = dup_fd(p.reg.state);
    up.peer_window = dup_fd(p.reg.window);
    // A window NIC's rings are in its ring area whatever the link's mode
    // (a copy link between different models): the end that moves parked
    // frames completes them in the sender's TX ring there.
    up.peer_rings_size = p.reg.rings_size;
    up.peer_rings = dup_fd(p.reg.rings);
    up.peer_irq = dup_fd(p.reg.irq);
    up.peer_doorbell = dup_fd(p.reg.doorbell);
    up.peer_tx_irq = dup_fd(p.reg.tx_irq);
    return {vms_.at(local.vm).client, std::move(up)};
}

std::vector<Outgoing> BrokerState::apply(const Plan& plan, const std::string& reason) {
    std::vector<Outgoing> out;
    for (const Link& l : plan.down) {
        link_base_.erase(l.id);
        spdlog::info("broker: link {} down: {}#{} <-> {}#{} ({})", l.id, l.a.vm, l.a.nic, l.b.vm, l.b.nic, reason);
        // Tell whichever side is still here; the departed side's socket is gone.
        for (const NicRef* side : {&l.a, &l.b}) {
            auto vm = vms_.find(side->vm);
            if (vm == vms_.end() || !client_vm_.count(vm->second.client)) continue;
            out.push_back({vm->second.client, LinkDown{l.id, side->nic, reason}});
        }
    }
    for (const Link& l : plan.up) {
        const Nic* a = find_nic(l.a);
        const Nic* b = find_nic(l.b);
        if (!a || !b) continue;
        link_base_[l.id] = read_link(l);  // its status counts from here (the slots never go back)
        ++history_.links_formed;
        spdlog::info("broker: link {} up: {}#{} <-> {}#{} ({}, {})", l.id, l.a.vm, l.a.nic, l.b.vm, l.b.nic,
                     to_string(l.mode), l.automatic ? "auto" : "static");
        if (l.mode == LinkMode::Copy && a->reg.mode == LinkMode::Window && b->reg.mode == LinkMode::Window)
            spdlog::warn("broker: link {}: window mode needs the same NIC model on both ends ({} and {}); "
                         "copy mode, the DMA windows stay private",
                         l.id, a->reg.model, b->reg.model);
        // a produces into b's ring with b's slot, and the other way round.
        out.push_back(link_up_for(l, l.a, l.b, l.slot_in_b, l.slot_in_a));
        out.push_back(link_up_for(l, l.b, l.a, l.slot_in_a, l.slot_in_b));
    }
    return out;
}

std::vector<Outgoing> BrokerState::refuse_links(const LinkAdoption::Outcome& outcome) {
    std::vector<Outgoing> out;
    for (const auto& r : outcome.refused) {
        ++history_.links_refused;
        spdlog::info("broker: link {} of {}#{} not adopted: {}", r.link_id, r.reporter.vm, r.reporter.nic, r.reason);
        auto vm = vms_.find(r.reporter.vm);
        if (vm == vms_.end()) continue;
        out.push_back({vm->second.client, LinkDown{r.link_id, r.reporter.nic, "not adopted: " + r.reason}});
    }
    return out;
}

std::vector<Outgoing> BrokerState::expire_adoptions() {
    // The ends told LinkDown may be linked again by the rules (a static
    // peer that comes back later, or auto wiring).
    auto out = refuse_links(adoption_.expire(planner_, clock_()));
    for (auto& o : expire_sound_grace()) out.push_back(std::move(o));
    return out;
}

std::optional<BrokerState::Clock::time_point> BrokerState::next_deadline() const {
    std::optional<Clock::time_point> next = adoption_.next_deadline();
    for (const auto& [ref, deadline] : sound_grace_)
        if (!next || deadline < *next) next = deadline;
    return next;
}

std::optional<ClientId> BrokerState::client_of(const std::string& vm) const {
    auto it = vms_.find(vm);
    if (it == vms_.end() || !client_vm_.count(it->second.client)) return std::nullopt;
    return it->second.client;
}

std::vector<Outgoing> BrokerState::apply_sounds(const SoundPlan& plan) {
    std::vector<Outgoing> out;
    for (const SoundUnlink& d : plan.down) {
        spdlog::info("broker: sound link {} <-> {} down ({})", card_name(d.a), card_name(d.b), d.reason);
        if (auto client = client_of(d.a.vm)) out.push_back({*client, SoundLinkDown{d.a.card, d.b.vm, d.reason, false}});
    }
    for (const SoundUnlink& r : plan.refused) {
        ++history_.sound_links_refused;
        spdlog::warn("broker: {}", r.reason);
        for (auto [local, peer] : {std::pair{&r.a, &r.b}, std::pair{&r.b, &r.a}})
            if (auto client = client_of(local->vm))
                out.push_back({*client, SoundLinkDown{local->card, peer->vm, r.reason, true}});
    }
    for (const SoundLink& l : plan.up) {
        const PlannedSound* card = sound_planner_.card(l.a);
        ++history_.sound_links_formed;
        spdlog::info("broker: sound link {} <-> {} up ({})", card_name(l.a), card_name(l.b),
                     card ? sound_format_text(card->rate, card->channels) : "?");
        sound_grace_.erase(l.a);
        sound_grace_.erase(l.b);
        // Each end gets the other card's inbox: its output writes into it.
        for (auto [local, peer] : {std::pair{&l.a, &l.b}, std::pair{&l.b, &l.a}}) {
            auto client = client_of(local->vm);
            auto peer_vm = vms_.find(peer->vm);
            if (!client || peer_vm == vms_.end()) continue;
            auto inbox = peer_vm->second.sounds.find(peer->card);
            if (inbox == peer_vm->second.sounds.end()) continue;
            out.push_back({*client, SoundLinkUp{local->card, peer->vm, peer->card, dup_fd(inbox->second.inbox)}});
        }
    }
    return out;
}

std::vector<Outgoing> BrokerState::expire_sound_grace() {
    std::vector<Outgoing> out;
    const auto now = clock_();
    for (auto it = sound_grace_.begin(); it != sound_grace_.end();) {
        if (it->second > now) {
            ++it;
            continue;
        }
        const CardRef ref = it->first;
        it = sound_grace_.erase(it);
        const PlannedSound* card = sound_planner_.card(ref);
        auto client = client_of(ref.vm);
        if (!card || !client || sound_planner_.linked_to(ref)) continue;
        std::string reason = fmt::format("{} did not register again within {} ms of the broker's restart", card->peer,
                                         adoption_grace_.count());
        spdlog::info("broker: sound card {}: {}; a link it had is down", card_name(ref), reason);
        out.push_back({*client, SoundLinkDown{ref.card, card->peer, std::move(reason), false}});
    }
    return out;
}

BrokerState::LinkDirections BrokerState::read_link(const Link& l) const {
    auto read_slot = [](const Nic* nic, std::uint32_t slot) {
        LinkCounts d;
        if (!nic || !nic->state) return d;
        const auto& s = reinterpret_cast<const nic::SharedNicState*>(nic->state.data())->slots[slot];
        d.frames = s.frames.load(std::memory_order_relaxed);
        d.bytes = s.bytes.load(std::memory_order_relaxed);
        d.dropped = s.dropped.load(std::memory_order_relaxed);
        return d;
    };
    // a produces into b's ring with b's slot, and the other way round.
    return {read_slot(find_nic(l.b), l.slot_in_b), read_slot(find_nic(l.a), l.slot_in_a)};
}

BrokerState::LinkDirections BrokerState::carried(const Link& l) const {
    LinkDirections now = read_link(l);
    auto base = link_base_.find(l.id);
    if (base == link_base_.end()) return now;
    // Saturating: the slots are in the VMs' pages, which they can write.
    auto since = [](const LinkCounts& n, const LinkCounts& b) {
        auto minus = [](std::uint64_t x, std::uint64_t y) { return x > y ? x - y : 0; };
        return LinkCounts{minus(n.frames, b.frames), minus(n.bytes, b.bytes), minus(n.dropped, b.dropped)};
    };
    return {since(now.a_to_b, base->second.a_to_b), since(now.b_to_a, base->second.b_to_a)};
}

// The peers NIC `ref` lists that are registered but not linked with it,
// and what the link waits for (LinkPlanner::waiting_for).
std::vector<std::pair<std::string, std::string>> BrokerState::waiting_for(const NicRef& ref) const {
    std::vector<std::pair<std::string, std::string>> out;
    const PlannedNic* n = planner_.nic(ref);
    if (!n) return out;
    for (const auto& peer : n->peers)
        if (std::string what = planner_.waiting_for(ref, peer); !what.empty()) out.emplace_back(peer, what);
    return out;
}

std::string BrokerState::waiting_text(const NicRef& ref) const {
    std::string out;
    for (const auto& [peer, what] : waiting_for(ref)) out += fmt::format(" ({}: waiting for {})", peer, what);
    return out;
}

std::string BrokerState::status_text() const {
    std::string out = history_text();
    out += fmt::format("VMs: {}\n", vms_.size());
    out += fmt::format("  {:<20} {:>8} {:>5}  {:<17} {:<10} {:<6} {}\n", "VM", "PID", "NIC", "MAC", "MODEL", "MODE",
                       "CROSSOVER");
    for (const auto& [name, vm] : vms_) {
        const PlannedVm& planned = planner_.vms().at(name);
        for (const auto& n : planned.nics)
            out += fmt::format("  {:<20} {:>8} {:>5}  {:<17} {:<10} {:<6} {}{}\n", name, vm.pid, n.index,
                               n.mac.to_string(), n.model, to_string(n.mode), crossover_config(n),
                               waiting_text(NicRef{name, n.index}));
        if (planned.nics.empty()) out += fmt::format("  {:<20} {:>8} {:>5}\n", name, vm.pid, "-");
    }
    out += registrations_text();
    out += fmt::format("Links: {}\n", planner_.links().size());
    if (!planner_.links().empty())
        out += fmt::format("  {:>4}  {:<24} {:<24} {:<6} {:<6} {:>10} {:>12} {:>8} {:>10} {:>12} {:>8}  {}\n", "ID",
                           "A", "B", "MODE", "WIRING", "A>B FRAMES", "A>B BYTES", "A>B DROP", "B>A FRAMES",
                           "B>A BYTES", "B>A DROP", "ORIGIN");
    for (const auto& [id, l] : planner_.links()) {
        const auto [ab, ba] = carried(l);
        out += fmt::format("  {:>4}  {:<24} {:<24} {:<6} {:<6} {:>10} {:>12} {:>8} {:>10} {:>12} {:>8}  {}\n", id,
                           fmt::format("{}#{}", l.a.vm, l.a.nic), fmt::format("{}#{}", l.b.vm, l.b.nic),
                           to_string(l.mode), l.automatic ? "auto" : "static", ab.frames, ab.bytes, ab.dropped,
                           ba.frames, ba.bytes, ba.dropped, l.adopted ? "adopted" : "formed");
    }
    out += sounds_text();
    if (status_text_section_) out += status_text_section_();
    return out;
}

// The sound cards, when any VM registered one.
std::string BrokerState::sounds_text() const {
    if (sound_planner_.card_count() == 0) return "";
    std::string out = fmt::format("Sound cards: {}\n", sound_planner_.card_count());
    out += fmt::format("  {:<20} {:>8} {:>5}  {:<20} {:<21} {}\n", "VM", "PID", "CARD", "PEER", "FORMAT", "STATE");
    for (const auto& [name, vm] : sound_planner_.vms()) {
        auto registered = vms_.find(name);
        const std::int32_t pid = registered == vms_.end() ? 0 : registered->second.pid;
        for (const auto& c : vm.cards)
            out += fmt::format("  {:<20} {:>8} {:>5}  {:<20} {:<21} {}\n", name, pid, c.index, c.peer,
                               sound_format_text(c.rate, c.channels), sound_planner_.state(CardRef{name, c.index}).text);
    }
    return out;
}

Json BrokerState::sounds_json(const std::string& vm) const {
    Json cards = Json::array();
    auto planned = sound_planner_.vms().find(vm);
    if (planned == sound_planner_.vms().end()) return cards;
    for (const auto& c : planned->second.cards) {
        const SoundCardState state = sound_planner_.state(CardRef{vm, c.index});
        Json card{{"index", c.index},
                  {"peer", c.peer},
                  {"rate", c.rate},
                  {"channels", c.channels},
                  {"state", to_string(state.kind)},
                  {"detail", state.text}};
        if (state.linked_to) card["linked_to"] = Json{{"vm", state.linked_to->vm}, {"card", state.linked_to->card}};
        cards.push_back(std::move(card));
    }
    return cards;
}

std::string BrokerState::status_json() const {
    Json vms = Json::array();
    for (const auto& [name, vm] : vms_) {
        Json v{{"name", name}, {"pid", vm.pid}};
        add_registration(v, vm);
        Json nics = Json::array();
        for (const auto& n : planner_.vms().at(name).nics) {
            Json waiting = Json::array();
            for (const auto& [peer, what] : waiting_for(NicRef{name, n.index}))
                waiting.push_back(Json{{"peer", peer}, {"for", what}});
            nics.push_back(Json{{"index", n.index},
                                {"mac", n.mac.to_string()},
                                {"model", n.model},
                                {"mode", to_string(n.mode)},
                                {"auto", n.auto_peer},
                                {"peers", n.peers},
                                {"waiting", std::move(waiting)}});
        }
        v["nics"] = std::move(nics);
        v["sounds"] = sounds_json(name);
        vms.push_back(std::move(v));
    }
    Json links = Json::array();
    for (const auto& [id, l] : planner_.links()) {
        const auto [ab, ba] = carried(l);
        auto dir = [](const LinkCounts& d) {
            return Json{{"frames", d.frames}, {"bytes", d.bytes}, {"dropped", d.dropped}};
        };
        links.push_back(Json{{"id", id},
                             {"a", {{"vm", l.a.vm}, {"nic", l.a.nic}}},
                             {"b", {{"vm", l.b.vm}, {"nic", l.b.nic}}},
                             {"mode", to_string(l.mode)},
                             {"wiring", l.automatic ? "auto" : "static"},
                             {"a_to_b", dir(ab)},
                             {"b_to_a", dir(ba)},
                             {"origin", l.adopted ? "adopted" : "formed"}});
    }
    Json doc{{"vms", std::move(vms)}, {"links", std::move(links)}, {"broker", history_json()}};
    if (status_json_section_) status_json_section_(doc);
    return json_line(doc);
}

}  // namespace xover::crossover
