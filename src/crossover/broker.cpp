#include "xover/crossover/broker.hpp"
#include "xover/unix_address.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xover/crossover/broker_backend.hpp"
#include "xover/crossover/broker_state.hpp"
#include "xover/crossover/protocol.hpp"
#include "xover/vmm/rate_limited_log.hpp"
#include "xover/vmm/jail.hpp"
#include "xover/vmm/seccomp.hpp"

namespace xover::crossover {

namespace {

// A send failed: had the client hung up already (a VM exiting while its
// peer's teardown is sent to it), or does it just not read?
bool hung_up(int socket) {
    pollfd p{socket, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

sockaddr_un socket_address(const std::filesystem::path& path) { return unix_address(path, "broker socket"); }

std::filesystem::path socket_dir(const std::filesystem::path& socket) {
    auto dir = socket.parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
}

// The socket's directory decides who can put a socket there: only this
// user (or root). Otherwise another user could listen there first and be
// sent a VM's memory. Does nothing when the directory does not exist yet.
void check_socket_dir(const std::filesystem::path& socket) {
    const auto dir = socket_dir(socket);
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        throw system_error(fmt::format("broker socket directory {}", dir.string()));
    }
    if (!S_ISDIR(st.st_mode)) throw Error("broker socket directory {} is not a directory (a symlink?)", dir.string());
    // This user's, root's, or the user this process becomes in its jail.
    if (st.st_uid != ::geteuid() && st.st_uid != 0 && st.st_uid != vmm::jail_user())
        throw Error("broker socket directory {} belongs to uid {}, not to this user (uid {}): another user could "
                    "run a broker there; use a directory of your own",
                    dir.string(), st.st_uid, ::geteuid());
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        throw Error("broker socket directory {} is open to other users (mode {:o}); it must be private "
                    "(chmod 700 {}), or another user could run a broker there",
                    dir.string(), st.st_mode & 07777, dir.string());
}

void make_socket_dir(const std::filesystem::path& path) {
    auto dir = socket_dir(path);
    std::error_code ec;
    if (std::filesystem::create_directories(dir, ec)) {
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
        // A jailed process (vmm/jail.hpp) goes on using it as its jail's user.
        if (auto user = vmm::jail_user(); user && ::chown(dir.c_str(), *user, gid_t(-1)) != 0)
            throw system_error(fmt::format("handing broker socket directory {} to uid {}", dir.string(), *user));
    }
    if (!std::filesystem::is_directory(dir)) throw Error("cannot create broker socket directory '{}'", dir.string());
    check_socket_dir(path);
}

// The broker's uid, from its socket: this user's or root's, or nobody is
// sent anything (a broker of another user gets no memfd).
void check_broker_credentials(int fd, const std::filesystem::path& path) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        throw system_error(fmt::format("SO_PEERCRED of broker {}", path.string()));
    if (cred.uid != ::geteuid() && cred.uid != 0)
        throw Error("the broker on {} runs as uid {} (pid {}), not as this user (uid {}) or root; refusing it",
                    path.string(), cred.uid, cred.pid, ::geteuid());
}

}  // namespace

void prepare_socket_dir(const std::filesystem::path& socket) { make_socket_dir(socket); }

std::filesystem::path default_broker_path() {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    if (runtime && *runtime) return std::filesystem::path(runtime) / "xover" / "broker.sock";
    return "/run/xover/broker.sock";
}

kvm::UniqueFd connect_broker(const std::filesystem::path& path, bool private_dir) {
    if (private_dir) check_socket_dir(path);
    sockaddr_un addr = socket_address(path);
    kvm::UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) throw system_error("socket(AF_UNIX, SOCK_SEQPACKET)");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        check_broker_credentials(fd.get(), path);
        return fd;
    }
    if (errno == ENOENT || errno == ECONNREFUSED) return {};
    throw system_error(fmt::format("connecting to broker {}", path.string()));
}

kvm::UniqueFd ensure_broker(const std::filesystem::path& path, const std::filesystem::path& exe,
                            std::chrono::milliseconds timeout, const std::vector<std::string>& broker_args) {
    check_socket_dir(path);
    if (auto fd = connect_broker(path)) return fd;
    make_socket_dir(path);

    // Everything the child needs is prepared before fork: after fork in a
    // multithreaded process only async-signal-safe calls are allowed.
    std::string exe_s = exe.string(), path_s = path.string();
    std::vector<std::string> args = broker_args;
    std::vector<char*> argv = {exe_s.data(), const_cast<char*>("broker"), const_cast<char*>("--broker"),
                               path_s.data(), const_cast<char*>("--exit-when-idle")};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t child = ::fork();
    if (child < 0) throw system_error("fork (starting the broker)");
    if (child == 0) {
        // Double fork: the broker is re-parented to init, so the VM never
        // has to reap it, and setsid keeps it out of the VM's terminal
        // signals (Ctrl-C on one VM must not kill everyone's broker).
        pid_t grandchild = ::fork();
        if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
        ::setsid();
        int devnull = ::open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            ::dup2(devnull, 0);
            ::dup2(devnull, 1);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }

    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto fd = connect_broker(path)) return fd;
        if (std::chrono::steady_clock::now() >= deadline)
            throw Error("started a broker ({} broker --broker {}) but it is not listening after {} ms", exe_s, path_s,
                        timeout.count());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::string request_status(const std::filesystem::path& path, bool json) {
    kvm::UniqueFd fd = connect_broker(path);
    if (!fd) throw Error("no broker is listening on {}", path.string());
    if (!send_message(fd.get(), StatusRequest{json})) throw Error("broker {} closed the connection", path.string());
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) throw Error("broker {} did not answer the status request", path.string());
    Received r = receive_message(fd.get());
    if (r.status != Received::Status::Message || !std::holds_alternative<StatusReply>(*r.message))
        throw Error("broker {} sent no status reply", path.string());
    return std::get<StatusReply>(*r.message).text;
}

std::string running_uplink(const std::filesystem::path& path) {
    // The JSON status names it as "uplink":{"port":"tap:NAME",...} (switch_uplink.cpp).
    const std::string json = request_status(path, true);
    const std::string key = "\"uplink\":{\"port\":\"";
    auto at = json.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    auto end = json.find('"', at);
    return end == std::string::npos ? "" : json.substr(at, end - at);
}

struct Broker::Impl {
    BrokerOptions options;
    kvm::UniqueFd lock;
    kvm::UniqueFd listener;
    kvm::UniqueFd stop_event;
    std::map<ClientId, kvm::UniqueFd> clients;
    ClientId next_client = 1;
    BrokerState state;
    std::unique_ptr<SlowPathSwitch> slow_path;  // backend = "broker" NICs
    bool had_vm = false;
    // At the cap a newcomer evicts the oldest client that registered no VM
    // (a flood of idle connections cannot lock VMs and `xover status`
    // out); with only VMs left, accepting stops. It stops for a while after
    // accept fails too (EMFILE: the connection stays queued, and polling
    // the listener again at once would spin).
    std::chrono::steady_clock::time_point accept_paused_until{};
    vmm::RateLimitedLog accept_log{1, std::chrono::seconds(1)};
    static constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

    bool accepting() const {
        return (clients.size() < options.max_clients || idle_client()) &&
               std::chrono::steady_clock::now() >= accept_paused_until;
    }
    std::optional<ClientId> idle_client() const {
        for (const auto& [id, fd] : clients)
            if (!state.registered(id)) return id;
        return std::nullopt;
    }

    void accept_clients() {
        for (;;) {
            if (clients.size() >= options.max_clients) {
                auto idle = idle_client();
                if (!idle) break;
                accept_log.warn("broker: {} connections, the most it serves; closing the oldest that registered "
                                "no VM",
                                clients.size());
                drop(*idle);
            }
            int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                accept_log.warn("broker: accept: {}; pausing new connections for {} ms", std::strerror(errno),
                                kAcceptBackoff.count());
                accept_paused_until = std::chrono::steady_clock::now() + kAcceptBackoff;
                return;
            }
            ucred cred{};
            socklen_t len = sizeof cred;
            if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
                accept_log.warn("broker: SO_PEERCRED: {}; closing that connection", std::strerror(errno));
                ::close(fd);
                continue;
            }
            ClientId id = next_client++;
            clients.emplace(id, kvm::UniqueFd(fd));
            state.client_connected(id, PeerCredentials{cred.pid, cred.uid, cred.gid});
        }
        accept_log.warn("broker: {} VMs registered, the most it serves at once; new connections wait", clients.size());
    }

    void drop(ClientId id) {
        clients.erase(id);
        deliver(state.client_gone(id));
    }

    void deliver(std::vector<Outgoing> out) {
        std::vector<ClientId> dead;
        for (const auto& o : out) {
            auto it = clients.find(o.to);
            if (it == clients.end()) continue;
            try {
                if (!send_message(it->second.get(), o.message)) {
                    if (hung_up(it->second.get()))
                        spdlog::debug("broker: client {} hung up before {} reached it", o.to, message_name(o.message));
                    else
                        spdlog::warn("broker: client {} is not reading; dropping it", o.to);
                    dead.push_back(o.to);
                }
            } catch (const ProtocolError& e) {
                spdlog::error("broker: cannot encode {}: {}", message_name(o.message), e.what());
            }
        }
        for (ClientId id : dead)
            if (clients.count(id)) drop(id);
    }

    // Reads everything a client has queued. Returns false when it is gone.
    bool serve(ClientId id) {
        for (;;) {
            auto it = clients.find(id);
            if (it == clients.end()) return false;
            Received r;
            try {
                r = receive_message(it->second.get());
            } catch (const ProtocolError& e) {
                spdlog::warn("broker: malformed message from client {}: {}; closing it", id, e.what());
                drop(id);
                return false;
            }
            if (r.status == Received::Status::WouldBlock) return true;
            if (r.status == Received::Status::Closed) {
                drop(id);
                return false;
            }
            BrokerState::Result result = state.handle(id, std::move(*r.message));
            deliver(std::move(result.send));
            if (result.close_client) {
                if (clients.count(id)) drop(id);
                return false;
            }
        }
    }
};

Broker::Broker(BrokerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    // Every VM's NICs hold several fds here: use all the fds we may.
    if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    // Its own uid is the one it runs as: its jail's user once jailed (vmm/jail.hpp).
    impl_->state = BrokerState(
        BrokerPolicy{vmm::jail_user().value_or(::geteuid()), LinkPolicy{impl_->options.link_any_uid}},
        impl_->options.adoption_grace);
    const auto& path = impl_->options.socket_path;
    make_socket_dir(path);
    sockaddr_un addr = socket_address(path);

    // The lock file decides which broker owns the socket path; the socket
    // file itself may be left behind by a broker that was killed.
    std::string lock_path = path.string() + ".lock";
    impl_->lock = kvm::UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!impl_->lock) throw system_error("opening broker lock file " + lock_path);
    if (::flock(impl_->lock.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) throw BrokerAlreadyRunning("a broker is already running on {}", path.string());
        throw system_error("locking " + lock_path);
    }
    // Before listening: a VM must never reach a broker whose uplink failed.
    std::unique_ptr<SwitchUplink> uplink;
    if (!impl_->options.uplink.empty()) uplink = SwitchUplink::open(impl_->options.uplink);
    ::unlink(path.c_str());

    // The switch first: a VM that sees the broker socket may connect its
    // `backend=broker` NIC to the switch at once.
    impl_->slow_path = std::make_unique<SlowPathSwitch>(switch_socket_path(path), std::move(uplink));
    SlowPathSwitch* sw = impl_->slow_path.get();
    impl_->state.add_to_status(
        [sw] { return sw->uplink() ? sw->uplink()->status_text() : std::string(); },
        [sw](Json& doc) {
            if (sw->uplink()) doc["uplink"] = sw->uplink()->status_json();
        });
    impl_->listener = kvm::UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!impl_->listener) throw system_error("socket(AF_UNIX, SOCK_SEQPACKET)");
    if (::bind(impl_->listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw system_error("binding broker socket " + path.string());
    ::chmod(path.c_str(), 0600);
    if (::listen(impl_->listener.get(), 64) != 0) throw system_error("listen on " + path.string());
    impl_->stop_event = kvm::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl_->stop_event) throw system_error("eventfd");
    spdlog::info("broker: listening on {}", path.string());
}

Broker::~Broker() {
    if (impl_ && impl_->listener) ::unlink(impl_->options.socket_path.c_str());
}

void Broker::stop() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(impl_->stop_event.get(), &one, sizeof one);
}

void Broker::run() {
    Impl& b = *impl_;
    vmm::apply_seccomp(b.options.seccomp, vmm::SeccompProfile::Broker);
    vmm::seccomp_test_probe();
    auto started = std::chrono::steady_clock::now();
    std::vector<pollfd> fds;
    std::vector<ClientId> ids;
    for (;;) {
        if (b.options.exit_when_idle) {
            const bool busy = b.state.vm_count() > 0 || b.slow_path->port_count() > 0;
            if (busy) b.had_vm = true;
            if (b.had_vm && !busy) {
                spdlog::info("broker: last VM left; exiting");
                return;
            }
            if (!b.had_vm && std::chrono::steady_clock::now() - started > b.options.first_vm_timeout) {
                spdlog::info("broker: no VM registered; exiting");
                return;
            }
        }
        fds.clear();
        ids.clear();
        fds.push_back({b.stop_event.get(), POLLIN, 0});
        // A listener not accepting is polled for nothing (fd -1): the
        // timeout below brings the loop back when the pause ends.
        const bool accepting = b.accepting();
        fds.push_back({accepting ? b.listener.get() : -1, POLLIN, 0});
        for (const auto& [id, fd] : b.clients) {
            fds.push_back({fd.get(), POLLIN, 0});
            ids.push_back(id);
        }
        const std::size_t switch_first = fds.size();
        b.slow_path->add_pollfds(fds);
        int timeout_ms = b.options.exit_when_idle ? 1000 : -1;
        if (!accepting) timeout_ms = int(Impl::kAcceptBackoff.count());
        if (auto deadline = b.state.next_deadline()) {
            // A link whose other end has not registered again (after a restart).
            auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
            int wait = int(std::max<std::int64_t>(0, left.count()));
            timeout_ms = timeout_ms < 0 ? wait : std::min(timeout_ms, wait);
        }
        int n = ::poll(fds.data(), fds.size(), timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw system_error("broker poll");
        }
        if (fds[0].revents) return;
        if (fds[1].revents & POLLIN) b.accept_clients();
        for (std::size_t i = 0; i < ids.size(); ++i) {
            short ev = fds[i + 2].revents;
            if (!ev) continue;
            // Read queued messages first, so a VM that registers and exits
            // at once is still handled in order; then notice the hang-up.
            if (b.serve(ids[i]) && (ev & (POLLHUP | POLLERR)) && b.clients.count(ids[i])) b.drop(ids[i]);
        }
        // The slow-path switch; unicast it carried between two registered
        // NICs is the cross-talk detector's input (auto wiring).
        std::vector<SlowPathSwitch::Seen> seen;
        b.slow_path->handle(std::span<const pollfd>(fds).subspan(switch_first), seen);
        for (const auto& s : seen) b.deliver(b.state.frame_switched(s.src, s.dst));
        b.deliver(b.state.expire_adoptions());
    }
}

}  // namespace xover::crossover
