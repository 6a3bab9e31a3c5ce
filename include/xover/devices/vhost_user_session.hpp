// xover as a vhost-user back-end: one front-end connection (a QEMU VM's
// virtio-net-pci with -netdev vhost-user, or its vhost-user-snd-pci) served
// by xover's own virtio-net or virtio-snd model, so that the QEMU VM's NIC
// or sound card becomes a crossover peer like any xover VM's
// (docs/architecture.md, section 10).
//
// The session reads the front-end's requests (vhost_user/messages.hpp) as
// the socket becomes readable on the event loop, keeps what they set up
// (features, the memory table, each ring's size, addresses, base, kick and
// call fds) and, once every ring is ready, starts the device: it builds a
// VirtioNet (or VirtioSnd) on the front-end's memory and drives it through
// its transport registers as a driver would (features, MSI-X vector 1 + q
// bound to ring q's call fd, ring addresses translated to guest-physical
// ones), then registers a crossover NIC or card with the broker under the
// session's VM name. A kick is a queue notify; the device's interrupts
// write the call fds, and a NIC's crossover peers write the RX call fd
// directly. A sound card's configuration space is read with GET_CONFIG. GET_VRING_BASE, RESET_OWNER
// or the end of the connection stop the device (its links go down).
//
// Every request is hostile input: a malformed one, a ring address outside
// the memory table, or a request this back-end does not serve ends the
// session with a log line naming it (the front-end's VM keeps running and
// may reconnect); nothing outside the regions the front-end shared is
// touched.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "xover/devices/lasting_backend.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/sound/backend.hpp"
#include "xover/vhost_user/memory_table.hpp"
#include "xover/vhost_user/messages.hpp"
#include "xover/vmm/config.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::devices {

struct VhostUserConfig {
    std::string vm_name;              // the name the broker knows the front-end's VM by
    vmm::NicConfig nic;               // virtio-net; its MAC must be the one QEMU's device has
    // Set: the session serves this sound card instead of the NIC. A card
    // without a crossover plays into `sound_backend` (the process's,
    // opened once, so a reconnecting front-end keeps writing one file).
    std::optional<vmm::SoundConfig> sound;
    sound::Backend* sound_backend = nullptr;
    std::filesystem::path broker;     // the broker socket (crossover NICs)
    std::string consent_group;        // as `xover up` hands it (XOVER_CONSENT_GROUP), else ""
    bool print_stats = false;         // the NIC's counters at each stop (stderr)
    bool all_stats = false;           // ... including those that are 0
};

class ServedDevice;

class VhostUserSession {
public:
    // Serves the connected `socket` on `loop`; `ended` runs (on the loop)
    // once the session is over, with a reason ("" for a clean close).
    // Its device sends through `backend` (the process's, opened once).
    VhostUserSession(const VhostUserConfig& config, vmm::EventLoop& loop, LastingBackend& backend,
                     kvm::UniqueFd socket, std::function<void(const std::string& reason)> ended);
    ~VhostUserSession();
    VhostUserSession(const VhostUserSession&) = delete;
    VhostUserSession& operator=(const VhostUserSession&) = delete;

    // Whether the device runs (every ring started).
    bool running() const { return device_ != nullptr; }
    // Whether the session has ended (its `ended` call may still be queued).
    bool over() const { return over_; }
    // Handles at once what the front-end has already sent, its hang-up
    // included: a front-end that left and connected again at once (QEMU
    // reconnecting) must not find its old session still in the way.
    void catch_up();
    // The features the served model offers, plus PROTOCOL_FEATURES; the
    // protocol features (REPLY_ACK, and CONFIG for a sound card).
    std::uint64_t offered_features() const;
    std::uint64_t offered_protocol_features() const;

private:
    struct Ring {
        std::uint32_t num = 0;
        std::uint16_t base = 0;
        bool have_address = false;
        vhost_user::VringAddress address;
        kvm::UniqueFd kick;
        kvm::UniqueFd call;
        bool enabled = false;  // SET_VRING_ENABLE (or a kick, without protocol features)
        bool started = false;  // the device runs this ring (until GET_VRING_BASE)
    };

    void on_readable();
    // Serves one request; throws vhost_user::ProtocolError (or xover::Error)
    // to end the session.
    void handle(vhost_user::Message& m);
    void ack(const vhost_user::Message& m);
    Ring& ring(std::uint32_t index, std::uint32_t request);
    void set_kick(std::uint32_t index, kvm::UniqueFd fd);
    void set_memory_table(vhost_user::Message& m);
    void kicked(unsigned q);
    // Starts the device when every ring is ready; stops it when one is not.
    void update_device();
    void start_device();
    void stop_device();
    std::uint16_t used_index(unsigned q);
    void end(const std::string& reason);
    void get_config(const vhost_user::Message& m);

    const VhostUserConfig& config_;
    vmm::EventLoop& loop_;
    LastingBackend& backend_;
    kvm::UniqueFd socket_;
    std::function<void(const std::string&)> ended_;
    bool over_ = false;

    std::uint64_t features_ = 0;           // acked by the front-end (SET_FEATURES)
    bool features_set_ = false;
    std::uint64_t protocol_features_ = 0;  // SET_PROTOCOL_FEATURES
    vhost_user::MemoryTable memory_;
    std::vector<Ring> rings_;  // virtio-net: RX, TX; virtio-snd: control, event, tx, rx
    std::unique_ptr<ServedDevice> device_;
};

}  // namespace xover::devices
