// The crossover agent of one VM: one broker connection shared by all of
// the VM's crossover NICs and crossover sound cards. They add their
// registration as they are built; whoever built them (the device manager)
// then calls register_vm() once, unless empty() (so a refusal, such as a
// duplicate VM name, fails VM setup before any vCPU runs). Links arrive on
// the VM's I/O thread and are handed to the NIC or card they name.
//
// When the broker goes away the links keep carrying frames and sound
// (their shared memory stays mapped) and the agent registers again, with
// backoff (reconnect_backoff.hpp), once a broker listens on the same path:
// the registrations with fresh fd duplicates, and the NIC links it still
// has, which the new broker adopts (link_adoption.hpp). Sound links need
// no adoption: the new broker plans them again and sends SoundLinkUp for
// each (the same peer card and inbox: still linked), and SoundLinkDown to a
// card whose peer card does not register again within the adoption grace
// (kAdoptionGrace; also to a card that had no link). It never starts a
// broker then: the VM runs under seccomp, which forbids fork and exec.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xover/crossover/client.hpp"
#include "xover/crossover/reconnect_backoff.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::crossover {

// What the agent needs from a crossover NIC (implemented by the device
// manager's crossover attachments). Called on the I/O thread.
class LinkedNic {
public:
    virtual ~LinkedNic() = default;
    virtual void crossover_link_up(std::shared_ptr<PeerLink> link) = 0;
    virtual void crossover_link_down(std::uint64_t link_id) = 0;
};

// What the agent needs from a crossover sound card (implemented by the
// device manager). Called on the I/O thread.
class LinkedSound {
public:
    virtual ~LinkedSound() = default;
    // `link.peer_inbox` is always present. After a broker restart the same
    // link (same peer card, same inbox memfd) comes again: still linked.
    virtual void sound_link_up(SoundLinkUp link) = 0;
    // Also for a card that has no link (a refusal, or after a restart).
    virtual void sound_link_down(const SoundLinkDown& down) = 0;
};

class VmAgent final : public LinkHandler {
public:
    VmAgent();

    // Queues NIC `reg.index` for registration; `nic` gets its links.
    void add_nic(NicRegistration reg, LinkedNic& nic);
    // The NIC is going away: no more links for it. The last NIC or sound
    // card closes the broker connection (the broker then tears down its
    // links at once).
    void remove_nic(std::uint32_t index);
    // Queues sound card `reg.index` for registration (kept for every later
    // registration, each with a fresh duplicate of the inbox); `card` gets
    // its links. The broker checks it (sound_planner.hpp): a bad card fails
    // register_vm() with the broker's reason.
    void add_sound(SoundRegistration reg, LinkedSound& card);
    // The card is going away: no more links for it (as remove_nic).
    void remove_sound(std::uint32_t index);
    // No NIC and no sound card: register_vm() need not be called.
    bool empty() const;
    // Connects (starting a broker if needed and `start_broker`), registers
    // every queued NIC and watches the connection on `loop`. Throws
    // xover::Error.
    void register_vm(const std::string& vm_name, const std::string& consent_group, const std::filesystem::path& broker,
                     vmm::EventLoop& loop, bool start_broker = true);
    // Auto wiring: safe from any thread; waits at most for the agent's lock
    // (held only briefly, never across a blocking call).
    void report_frame_seen(std::uint32_t nic, const net::MacAddress& dst);

    // Link and unlink at run time (the VM's control API): NIC `nic`'s
    // static peers are now `peers`, and its auto setting `auto_peer` when
    // given (a carrier taken down clears both for a while). Kept for every
    // later registration (a restarted broker gets the current list) and
    // sent to the broker now if connected (SetPeers); the broker applies
    // the link rules to it, and what changes arrives as LinkUp / LinkDown
    // on the I/O thread, later: a link needs the peer's consent, so naming
    // a peer may link nothing (the broker's status says what it waits for).
    // False, nothing changed, when NIC `nic` has no crossover here. Throws
    // xover::Error for a list a registration could not carry (check_peers).
    // Safe from any thread; holds the agent's lock for one non-blocking send.
    bool set_peers(std::uint32_t nic, std::vector<std::string> peers, std::optional<bool> auto_peer = {});
    // Snapshots, safe from any thread.
    std::vector<std::uint32_t> nic_indices() const;            // the crossover NICs
    std::vector<std::uint32_t> sound_indices() const;          // the crossover sound cards
    std::vector<std::string> peers(std::uint32_t nic) const;   // NIC `nic`'s static peers (none if no such NIC)
    bool auto_peer(std::uint32_t nic) const;                   // NIC `nic` says crossover = "auto"
    std::vector<LiveLink> live_links() const;                  // the links the NICs have now

    // LinkHandler (I/O thread)
    void link_up(std::shared_ptr<PeerLink> link) override;
    void link_down(std::uint64_t link_id, std::uint32_t local_nic) override;
    void registered() override;
    void registration_refused(const std::string& reason) override;
    void sound_link_up(SoundLinkUp link) override;
    void sound_link_down(const SoundLinkDown& down) override;

private:
    enum class Connection { Registered, Reconnecting, Registering };

    Register registration_locked() const;
    void watch_client_locked();
    void connection_ended_locked();
    void reconnect();
    void arm_retry_locked();
    void disconnect_locked();
    LinkedNic* nic_for(std::uint32_t index);
    LinkedSound* sound_for(std::uint32_t index);

    mutable std::mutex mutex_;
    std::optional<BrokerClient> client_;
    vmm::EventLoop* loop_ = nullptr;
    std::map<std::uint32_t, LinkedNic*> nics_;
    // Kept for the life of the NIC: each registration sends duplicates.
    std::map<std::uint32_t, NicRegistration> registrations_;
    std::map<std::uint32_t, LinkedSound*> sounds_;
    std::map<std::uint32_t, SoundRegistration> sound_registrations_;
    // The links the NICs have, by (link id, local NIC): reported when
    // registering again.
    std::map<std::pair<std::uint64_t, std::uint32_t>, LiveLink> live_links_;
    std::string vm_name_, consent_group_;
    std::filesystem::path broker_;
    std::uint32_t registrations_done_ = 0;
    Connection connection_ = Connection::Registered;
    std::string last_problem_;  // logged once, not at every attempt
    ReconnectBackoff backoff_;
    kvm::UniqueFd retry_timer_;
};

}  // namespace xover::crossover
