// The broker's decisions, as a pure class: given VM registrations, VM
// departures and frame-seen reports, which crossover links to make and
// which to tear down. No sockets or fds here, so every rule is unit tested.
//
// Who may be linked (the security rule: a VM's RAM is mapped only into VMs
// its configuration allows). A NIC takes part in crossover when its
// configuration names at least one peer or says "auto". Two such NICs a
// (of VM A) and b (of VM B ≠ A) may be linked when
//   - A's NIC a lists B, or B's NIC b lists A ("static": one side naming the
//     other is consent enough, both sides still have to enable crossover):
//     the link is made as soon as both are registered, in either order;
//   - otherwise, when a or b is "auto": the link is made when the cross-talk
//     detector sees a unicast frame from one to the other's MAC;
//   - otherwise never. A NIC with no crossover configuration is never
//     linked, so its VM's memory is never mapped anywhere else.
// A NIC may have several links (one-to-many), up to kMaxProducerSlots.
// A link is in window mode only when both NICs ask for window mode.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xover/crossover/protocol.hpp"
#include "xover/net/mac_address.hpp"

namespace xover::crossover {

struct NicRef {
    std::string vm;
    std::uint32_t nic = 0;
    auto operator<=>(const NicRef&) const = default;
};

struct PlannedNic {
    std::uint32_t index = 0;
    net::MacAddress mac;
    std::string model;
    std::vector<std::string> peers;
    bool auto_peer = false;
    LinkMode mode = LinkMode::Copy;

    bool crossover_enabled() const { return auto_peer || !peers.empty(); }
    bool lists(const std::string& vm) const;
};

struct PlannedVm {
    std::string name;
    std::vector<PlannedNic> nics;
    const PlannedNic* nic(std::uint32_t index) const;
};

struct Link {
    std::uint64_t id = 0;
    NicRef a, b;
    LinkMode mode = LinkMode::Copy;
    bool automatic = false;
    // Counter slot in a's state page that b uses when producing into a's RX
    // ring, and the other way round.
    std::uint32_t slot_in_a = 0;
    std::uint32_t slot_in_b = 0;
};

struct Plan {
    std::vector<Link> up;
    std::vector<Link> down;
    bool empty() const { return up.empty() && down.empty(); }
};

enum class Allowance { Never, Static, Auto };

class LinkPlanner {
public:
    struct AddResult {
        std::optional<std::string> error;  // set: refused, nothing changed
        Plan plan;
    };

    // Registers a VM; refuses a duplicate name, a duplicate MAC (within the
    // VM or against any registered NIC), a multicast MAC, duplicate NIC
    // indices or an empty name. On success, returns the static links that
    // can now be made.
    AddResult add_vm(PlannedVm vm);
    // The VM left (exit, crash, socket hang-up): all its links go down.
    Plan remove_vm(const std::string& name);
    // VM `vm`'s NIC `nic` sent a frame to `dst`: the cross-talk detector.
    // Makes a link when dst is another registered NIC that this one may be
    // linked with and is not linked with yet.
    Plan frame_seen(const std::string& vm, std::uint32_t nic, const net::MacAddress& dst);

    static Allowance allowance(const std::string& vm_a, const PlannedNic& a, const std::string& vm_b,
                               const PlannedNic& b);

    std::optional<NicRef> find_mac(const net::MacAddress& mac) const;
    const PlannedNic* nic(const NicRef& ref) const;
    bool linked(const NicRef& x, const NicRef& y) const;

    const std::map<std::string, PlannedVm>& vms() const { return vms_; }
    const std::map<std::uint64_t, Link>& links() const { return links_; }

private:
    std::optional<Link> make_link(const NicRef& a, const NicRef& b, bool automatic);
    std::optional<std::uint32_t> take_slot(const NicRef& ref);
    void free_slot(const NicRef& ref, std::uint32_t slot);

    std::map<std::string, PlannedVm> vms_;
    std::map<std::uint64_t, Link> links_;
    std::map<NicRef, std::uint32_t> used_slots_;  // bit i = slot i in use
    std::uint64_t next_link_id_ = 1;
};

}  // namespace xover::crossover
