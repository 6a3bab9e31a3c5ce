// The broker's decisions, as a pure class: given VM registrations, VM
// departures and frame-seen reports, which crossover links to make and
// which to tear down. No sockets or fds here, so every rule is unit tested.
//
// Who may be linked (the security rule: a VM's RAM is mapped only into VMs
// whose operator both sides agree to). A NIC takes part in crossover when
// its configuration names at least one peer or says "auto". Two such NICs
// a (of VM A) and b (of VM B != A), both VMs of one uid (unless the
// broker's policy links any uids), may be linked when both consent:
//   - "static": a lists B and b lists A; or both VMs came from one `xover
//     up` file (one consent group: the file is the operator's consent) and
//     one of them lists the other. The link is made as soon as both are
//     registered, in either order;
//   - "auto": each NIC either says "auto" or lists the other VM (and at
//     least one says "auto"), or both are in one consent group and one says
//     "auto": the link is made when the cross-talk detector sees a unicast
//     frame from one to the other's MAC;
//   - otherwise never. In particular one side naming the other is not
//     consent: `xover status` shows that NIC as waiting for the peer.
// A NIC with no crossover configuration is never linked, so its VM's
// memory is never mapped anywhere else. Sound cards are linked by the same
// rule (static only: sound_planner.hpp); both planners ask link_consent().
// A NIC may have several links (one-to-many), up to kMaxProducerSlots.
// A link is in window mode only when both NICs ask for window mode.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
    std::uint32_t uid = 0;      // the registering process's (SO_PEERCRED)
    std::string consent_group;  // one `xover up` run; "" for none
    const PlannedNic* nic(std::uint32_t index) const;
    PlannedNic* nic(std::uint32_t index);
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
    bool adopted = false;  // made by an earlier broker, reported by both ends (adopt())
};

struct Plan {
    std::vector<Link> up;
    std::vector<Link> down;
    bool empty() const { return up.empty() && down.empty(); }
};

enum class Allowance { Never, Static, Auto };

// Why NIC `nic` may not list `peers` (more than kMaxPeersPerNic, or a name
// that is not a VM name, xover/vm_name.hpp), or nothing: what a
// registration and a change of peers must pass.
std::optional<std::string> check_peers(std::uint32_t nic, const std::vector<std::string>& peers);

struct LinkPolicy {
    bool any_uid = false;  // link VMs of different uids (broker --link-any-uid)
    bool uids_may_link(std::uint32_t a, std::uint32_t b) const { return a == b || any_uid; }
};

// One end of a link that may be made, as the consent rule sees it: whose
// it is and what its configuration says about the other end's VM. NIC
// links (LinkPlanner) and sound links (SoundPlanner) alike.
struct ConsentEnd {
    std::string_view vm;
    std::uint32_t uid = 0;
    std::string_view consent_group;  // "" for none
    bool names_other = false;        // its configuration names the other end's VM
    bool auto_peer = false;          // crossover = "auto" (NICs only)
};

// The link rules (the comment at the top of this file): whether two ends
// may be linked, and how. Never between ends of one VM, nor of two uids
// unless the policy allows it; Static when both name each other, or when
// both VMs share a consent group and one names the other; Auto (NICs) as
// described above; Never otherwise.
Allowance link_consent(const ConsentEnd& a, const ConsentEnd& b, const LinkPolicy& policy);

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
    // add_vm in two steps, so that a re-registering VM's links are adopted
    // before the static rules could make them a second time: admit_vm
    // validates and records the VM (the error when refused, nothing
    // changed); static_links then makes the links it can make now.
    std::optional<std::string> admit_vm(PlannedVm vm);
    Plan static_links(const std::string& name);
    // Takes over a link an earlier broker made (both of its ends reported
    // it): it must join two registered NICs that may be linked, in the mode
    // make_link would choose, with an unused id and free slots. Returns why
    // not, or nothing once recorded (adopted = true).
    std::optional<std::string> adopt(Link link);
    // A slot a not-yet-adopted link still uses, kept from new links; false
    // when it is out of range or taken.
    bool reserve_slot(const NicRef& ref, std::uint32_t slot);
    void release_slot(const NicRef& ref, std::uint32_t slot) { free_slot(ref, slot); }
    // New links get ids above `id` (an earlier broker's link may hold it).
    void skip_link_ids_through(std::uint64_t id);
    // The VM left (exit, crash, socket hang-up): all its links go down.
    Plan remove_vm(const std::string& name);
    // Link and unlink at run time: NIC `ref`'s static peers are now
    // `peers` (its auto setting unchanged). Every link of that NIC the
    // rules no longer allow goes down (plan.down, slots freed); the static
    // links the new list allows and that do not exist yet are made
    // (plan.up, new ids). The rules are the registration's: outside a
    // consent group both sides must name each other, so naming a peer
    // links only if it names this VM too, and dropping a peer unlinks. In
    // one consent group (one `xover up` file) one side naming the other is
    // enough, so dropping a peer keeps the link while the peer still names
    // this VM: both sides must drop each other. An empty list on a NIC that
    // is not auto is no crossover at all: every link of that NIC goes down.
    // Auto links stay while both NICs still allow auto wiring. Refused (the
    // error, nothing changed) for an unknown NIC or a list check_peers
    // refuses.
    AddResult set_peers(const NicRef& ref, std::vector<std::string> peers, std::optional<bool> auto_peer = {});
    // VM `vm`'s NIC `nic` sent a frame to `dst`: the cross-talk detector.
    // Makes a link when dst is another registered NIC that this one may be
    // linked with and is not linked with yet.
    Plan frame_seen(const std::string& vm, std::uint32_t nic, const net::MacAddress& dst);

    explicit LinkPlanner(LinkPolicy policy = {}) : policy_(policy) {}

    Allowance allowance(const PlannedVm& vm_a, const PlannedNic& a, const PlannedVm& vm_b,
                        const PlannedNic& b) const;
    // NIC `ref` lists VM `peer`, which is registered, but they may not be
    // linked: what is missing, for `xover status` ("" when nothing is).
    std::string waiting_for(const NicRef& ref, const std::string& peer) const;

    std::optional<NicRef> find_mac(const net::MacAddress& mac) const;
    const PlannedNic* nic(const NicRef& ref) const;
    bool linked(const NicRef& x, const NicRef& y) const;

    const std::map<std::string, PlannedVm>& vms() const { return vms_; }
    const std::map<std::uint64_t, Link>& links() const { return links_; }

private:
    // The static links VM `vm`'s NIC `n` may have now and has not, into
    // plan.up, each with the other NIC as a and `n` as b.
    void static_links_of(const PlannedVm& vm, const PlannedNic& n, Plan& plan);
    // Takes link `it` down into plan.down and frees its slots.
    std::map<std::uint64_t, Link>::iterator take_down(std::map<std::uint64_t, Link>::iterator it, Plan& plan);
    std::optional<Link> make_link(const NicRef& a, const NicRef& b, bool automatic);
    std::optional<std::uint32_t> take_slot(const NicRef& ref);
    void free_slot(const NicRef& ref, std::uint32_t slot);

    LinkPolicy policy_;
    std::map<std::string, PlannedVm> vms_;
    std::map<std::uint64_t, Link> links_;
    std::map<NicRef, std::uint32_t> used_slots_;  // bit i = slot i in use
    std::uint64_t next_link_id_ = 1;
};

}  // namespace xover::crossover
