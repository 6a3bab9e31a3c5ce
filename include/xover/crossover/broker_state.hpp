// The broker's registry, without sockets: what it holds for each
// registered VM (its NICs' memfds and eventfds, a mapping of each NIC's
// shared state page for counters, its sound cards' inboxes), how it
// answers each message, and the status report. broker.cpp feeds it messages and sends what it returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xover/crossover/link_adoption.hpp"
#include "xover/crossover/link_planner.hpp"
#include "xover/crossover/protocol.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/crossover/sound_planner.hpp"
#include "xover/crossover/status_json.hpp"

namespace xover::crossover {

using ClientId = std::uint64_t;

// Who a client is, from its socket (SO_PEERCRED) when it connected.
struct PeerCredentials {
    std::int32_t pid = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
};

struct BrokerPolicy {
    std::uint32_t owner_uid = 0;  // the broker's own uid: it (and root) may register
    LinkPolicy links;             // which registered VMs may be linked
};

struct Outgoing {
    ClientId to = 0;
    Message message;
};

class BrokerState {
public:
    using Clock = LinkAdoption::Clock;

    explicit BrokerState(BrokerPolicy policy = {}, std::chrono::milliseconds adoption_grace = kAdoptionGrace)
        : policy_(policy), planner_(policy.links), sound_planner_(policy.links), adoption_(adoption_grace),
          adoption_grace_(adoption_grace) {}

    struct Result {
        std::vector<Outgoing> send;
        bool close_client = false;  // protocol violation: drop the sender
    };

    // A client connected; nothing it sends is served before this.
    void client_connected(ClientId id, PeerCredentials credentials) { credentials_[id] = credentials; }
    bool registered(ClientId id) const { return client_vm_.count(id) != 0; }
    // Whether a client of these credentials may use the broker at all.
    bool admits(const PeerCredentials& c) const { return c.uid == 0 || c.uid == policy_.owner_uid; }
    // One message from client `from`.
    Result handle(ClientId from, Message message);
    // The client's socket hung up (exit, SIGKILL) or was dropped.
    std::vector<Outgoing> client_gone(ClientId from);
    // The slow-path switch carried a unicast frame from `src` to `dst`:
    // the cross-talk detector may link the two NICs.
    std::vector<Outgoing> frame_switched(const net::MacAddress& src, const net::MacAddress& dst);
    // After a restart: LinkDown to the ends of links whose other end did
    // not register again in time (link_adoption.hpp), and SoundLinkDown to
    // the sound cards of a VM that registered again whose peer card did
    // not (it may have died while no broker ran: its survivor stops
    // playing into a dead cable). The broker calls it when next_deadline()
    // passes.
    std::vector<Outgoing> expire_adoptions();
    std::optional<Clock::time_point> next_deadline() const;
    // Tests move time on.
    void set_clock(std::function<Clock::time_point()> clock) { clock_ = std::move(clock); }

    std::size_t vm_count() const { return vms_.size(); }
    std::string status_text() const;
    std::string status_json() const;
    // What the status report adds about parts the registry does not own
    // (the switch's uplink): text lines (empty adds nothing), and members of
    // the JSON document.
    void add_to_status(std::function<std::string()> text, std::function<void(Json&)> json) {
        status_text_section_ = std::move(text);
        status_json_section_ = std::move(json);
    }
    const LinkPlanner& planner() const { return planner_; }
    const SoundPlanner& sound_planner() const { return sound_planner_; }

private:
    struct Nic {
        NicRegistration reg;  // keeps the VM's fds open while it is registered
        SharedMapping state;  // the NIC's state page, read for counters
    };
    struct Vm {
        ClientId client = 0;
        std::int32_t pid = 0;
        std::map<std::uint32_t, Nic> nics;
        std::map<std::uint32_t, SoundRegistration> sounds;  // keeps their inboxes open
        // Its history, for status: this registration is its (earlier + 1)th.
        std::uint32_t earlier_registrations = 0;
        std::chrono::system_clock::time_point registered_at;
    };
    // What happened since this broker started, for status.
    struct History {
        std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
        std::uint64_t registrations = 0, re_registrations = 0;
        std::uint64_t links_formed = 0, links_adopted = 0, links_refused = 0;
        std::uint64_t sound_links_formed = 0, sound_links_refused = 0;
    };

    Result on_register(ClientId from, Register reg);
    std::vector<Outgoing> on_set_peers(const std::string& vm, SetPeers set);
    static std::string map_for_crossover(Nic& nic);
    std::vector<Outgoing> apply(const Plan& plan, const std::string& reason);
    std::vector<Outgoing> apply_sounds(const SoundPlan& plan);
    std::vector<Outgoing> expire_sound_grace();
    std::string sounds_text() const;
    Json sounds_json(const std::string& vm) const;
    std::optional<ClientId> client_of(const std::string& vm) const;
    std::vector<Outgoing> refuse_links(const LinkAdoption::Outcome& outcome);
    // broker_history.cpp: what `xover status` says about restarts.
    std::string history_text() const;
    std::string registrations_text() const;
    Json history_json() const;
    static void add_registration(Json& vm_json, const Vm& vm);
    Outgoing link_up_for(const Link& link, const NicRef& local, const NicRef& peer, std::uint32_t slot,
                         std::uint32_t peer_slot) const;
    const Nic* find_nic(const NicRef& ref) const;
    std::vector<std::pair<std::string, std::string>> waiting_for(const NicRef& ref) const;
    std::string waiting_text(const NicRef& ref) const;
    const std::string* vm_of(ClientId client) const;
    // What one direction of a link carried: frames, bytes, dropped.
    struct LinkCounts {
        std::uint64_t frames = 0, bytes = 0, dropped = 0;
    };
    struct LinkDirections {
        LinkCounts a_to_b, b_to_a;
    };
    LinkDirections read_link(const Link& l) const;  // the slots, as they stand
    LinkDirections carried(const Link& l) const;    // since it formed (or was adopted)

    BrokerPolicy policy_;
    LinkPlanner planner_;
    SoundPlanner sound_planner_;
    LinkAdoption adoption_;
    std::chrono::milliseconds adoption_grace_;
    // Sound cards of VMs that registered again (after a broker restart)
    // and were not linked at once: when their peer card has to be back.
    std::map<CardRef, Clock::time_point> sound_grace_;
    History history_;
    // The producer slots count since their VM started, as counters do (a
    // NIC's xover_rx_frames never goes back); each link's status counts
    // from what its slots held when it formed. An adopted link counts from
    // zero: its slots' whole history, usually that link's.
    std::map<std::uint64_t, LinkDirections> link_base_;
    std::function<Clock::time_point()> clock_ = [] { return Clock::now(); };
    std::map<ClientId, PeerCredentials> credentials_;
    std::map<std::string, Vm> vms_;
    std::map<ClientId, std::string> client_vm_;
    std::function<std::string()> status_text_section_;
    std::function<void(Json&)> status_json_section_;
};

}  // namespace xover::crossover
