// The broker daemon (`xover broker`) and the helpers VMs use to reach it.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "xover/error.hpp"
#include "xover/crossover/link_adoption.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/config.hpp"

namespace xover::crossover {

// $XDG_RUNTIME_DIR/xover/broker.sock, or /run/xover/broker.sock.
std::filesystem::path default_broker_path();

// Makes the directory of `socket` (mode 0700) if it is missing, and checks
// it is this user's (or root's) and closed to others: where the broker's
// socket and the control API's sockets go. Throws xover::Error.
void prepare_socket_dir(const std::filesystem::path& socket);

// Connects to a listening broker. Returns an empty fd when nobody listens
// there (no socket file, or a stale one); throws xover::Error otherwise,
// and when the broker runs as another user (not this one, not root).
// `private_dir`: also refuse a socket directory that is not this user's
// (or root's) or that other users can reach: a VM about to send its memory
// checks that; `xover status` need not.
kvm::UniqueFd connect_broker(const std::filesystem::path& path, bool private_dir = false);

// Checks the socket directory as connect_broker(path, true) does, then
// connects, or starts `EXE broker --broker PATH --exit-when-idle` (EXE is
// this program by default) detached from the caller, and waits up to
// `timeout` for it to listen. Two VMs racing here start at most one broker
// (the broker holds a lock file next to the socket). Throws xover::Error.
// `broker_args` are added to the broker's command line (`--uplink tap:NAME`).
kvm::UniqueFd ensure_broker(const std::filesystem::path& path,
                            const std::filesystem::path& exe = "/proc/self/exe",
                            std::chrono::milliseconds timeout = std::chrono::seconds(5),
                            const std::vector<std::string>& broker_args = {});

// The uplink ("tap:NAME") of the broker listening on `path`, "" when it
// has none. Throws xover::Error when no broker answers there.
std::string running_uplink(const std::filesystem::path& path);

// Asks the broker at `path` for its status (text table or JSON).
std::string request_status(const std::filesystem::path& path, bool json);

class BrokerAlreadyRunning : public Error {
public:
    using Error::Error;
};

struct BrokerOptions {
    std::filesystem::path socket_path;
    // Exit when the last VM leaves, or when no VM has registered within
    // `first_vm_timeout` of starting (a broker started for a VM that then
    // failed must not linger).
    bool exit_when_idle = false;
    std::chrono::milliseconds first_vm_timeout = std::chrono::seconds(30);
    // "tap:NAME": the slow-path switch's uplink (switch_uplink.hpp); "" for none.
    std::string uplink{};
    // Link VMs that run as different uids (they still have to consent).
    bool link_any_uid = false;
    // After a restart: how long a reported link waits for its other end.
    std::chrono::milliseconds adoption_grace = kAdoptionGrace;
    // Connections served at once; more wait in the listen backlog.
    std::size_t max_clients = 256;
    // The filter run() loads once the broker listens (vmm/seccomp.hpp).
    vmm::SeccompMode seccomp = vmm::SeccompMode::Kill;
};

class Broker {
public:
    // Creates the socket directory (0700), takes the lock file, replaces a
    // stale socket, attaches the uplink and listens. Throws
    // BrokerAlreadyRunning when another broker holds the lock, xover::Error
    // for other failures (an uplink tap that cannot be opened among them).
    explicit Broker(BrokerOptions options);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Serves clients until stop() or the idle rule ends it.
    void run();
    // Safe from any thread or a signal handler.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace xover::crossover
