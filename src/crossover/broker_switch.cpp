// The broker end of the slow-path switch (see broker_backend.hpp).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>

#include <spdlog/spdlog.h>

#include "xover/crossover/broker_backend.hpp"
#include "xover/error.hpp"

namespace xover::crossover {

namespace {
// Stop reading every port while some port has this many frames waiting:
// senders then back up into their own sockets (Busy), nothing is lost.
constexpr std::size_t kHighWater = 256;
// Frames read from one port per poll round (bounds every queue's growth).
constexpr unsigned kReadBurst = 64;
// Far above what the two rules above allow; only a bug gets here.
constexpr std::size_t kHardLimit = 16384;
// The detector hears about a (source, destination) pair at most this often.
constexpr std::chrono::milliseconds kSeenInterval{500};
}  // namespace

struct SlowPathSwitch::Port {
    kvm::UniqueFd fd;
    bool greeted = false;
    SwitchHello hello;
    std::deque<std::vector<std::uint8_t>> out;
    std::map<net::MacAddress, std::chrono::steady_clock::time_point> reported;
    bool broken = false;
};

SlowPathSwitch::SlowPathSwitch(const std::filesystem::path& path) : path_(path), buffer_(65536) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string s = path.string();
    if (s.size() >= sizeof addr.sun_path) throw Error("broker switch socket path '{}' is too long", s);
    std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
    ::unlink(s.c_str());  // the broker holds the lock file: a leftover is stale
    listener_ = kvm::UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener_) throw system_error("socket(AF_UNIX, SOCK_SEQPACKET) for the switch");
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw system_error("binding the broker switch socket " + s);
    ::chmod(s.c_str(), 0600);
    if (::listen(listener_.get(), 64) != 0) throw system_error("listen on " + s);
}

SlowPathSwitch::~SlowPathSwitch() {
    if (listener_) ::unlink(path_.c_str());
}

bool SlowPathSwitch::backed_up() const {
    for (const auto& [id, port] : ports_)
        if (port->out.size() >= kHighWater) return true;
    return false;
}

void SlowPathSwitch::add_pollfds(std::vector<pollfd>& fds) {
    polled_.clear();
    fds.push_back({listener_.get(), POLLIN, 0});
    const bool stop_reading = backed_up();
    if (stop_reading) ++totals_.stalls;
    for (const auto& [id, port] : ports_) {
        short events = 0;
        if (!stop_reading) events |= POLLIN;
        if (!port->out.empty()) events |= POLLOUT;
        fds.push_back({port->fd.get(), events, 0});
        polled_.push_back(id);
    }
}

void SlowPathSwitch::handle(std::span<const pollfd> fds, std::vector<Seen>& seen) {
    if (fds.empty()) return;
    if (fds[0].revents & POLLIN) accept_ports();
    for (std::size_t i = 0; i < polled_.size() && i + 1 < fds.size(); ++i) {
        PortId id = polled_[i];
        short ev = fds[i + 1].revents;
        if (!ev) continue;
        auto it = ports_.find(id);
        if (it == ports_.end()) continue;
        if ((ev & POLLOUT) && !flush(*it->second)) it->second->broken = true;
        if ((ev & POLLIN) && !read_port(id, seen)) continue;  // dropped
        it = ports_.find(id);
        if (it == ports_.end()) continue;
        if ((ev & (POLLHUP | POLLERR)) && !(ev & POLLIN)) it->second->broken = true;
    }
    for (auto it = ports_.begin(); it != ports_.end();) {
        auto next = std::next(it);
        if (it->second->broken) drop(it->first);
        it = next;
    }
}

void SlowPathSwitch::accept_ports() {
    for (;;) {
        int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        auto port = std::make_unique<Port>();
        port->fd = kvm::UniqueFd(fd);
        ports_.emplace(next_id_++, std::move(port));
    }
}

void SlowPathSwitch::drop(PortId id) {
    auto it = ports_.find(id);
    if (it == ports_.end()) return;
    if (it->second->greeted)
        spdlog::info("broker switch: port {}#{} ({}) left", it->second->hello.vm, it->second->hello.nic,
                     it->second->hello.mac.to_string());
    ports_.erase(it);
}

// Returns false when the port was dropped.
bool SlowPathSwitch::read_port(PortId id, std::vector<Seen>& seen) {
    for (unsigned i = 0; i < kReadBurst; ++i) {
        auto it = ports_.find(id);
        if (it == ports_.end()) return false;
        Port& port = *it->second;
        ssize_t n = ::recv(port.fd.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) {
            drop(id);
            return false;
        }
        std::span<const std::uint8_t> packet(buffer_.data(), std::size_t(n));
        if (!port.greeted) {
            auto hello = SwitchHello::decode(packet);
            if (!hello) {
                spdlog::warn("broker switch: a port sent no valid greeting; closing it");
                drop(id);
                return false;
            }
            port.hello = std::move(*hello);
            port.greeted = true;
            spdlog::info("broker switch: port {}#{} ({}) joined", port.hello.vm, port.hello.nic,
                         port.hello.mac.to_string());
            continue;
        }
        if (packet.size() < 14) continue;  // not even an Ethernet header
        forward(id, packet, seen);
    }
    return true;
}

void SlowPathSwitch::forward(PortId from, std::span<const std::uint8_t> frame, std::vector<Seen>& seen) {
    ++totals_.frames;
    net::MacAddress dst;
    std::memcpy(dst.bytes.data(), frame.data(), 6);
    Port& src = *ports_.at(from);
    if (!dst.is_multicast()) {
        for (auto& [id, port] : ports_) {
            if (id == from || !port->greeted || !(port->hello.mac == dst)) continue;
            to_port(*port, frame);
            auto now = std::chrono::steady_clock::now();
            auto& last = src.reported[dst];
            if (now - last >= kSeenInterval) {
                last = now;
                seen.push_back({src.hello.mac, dst});
            }
            return;
        }
    }
    ++totals_.flooded;  // broadcast, multicast, unknown unicast
    for (auto& [id, port] : ports_)
        if (id != from && port->greeted) to_port(*port, frame);
}

void SlowPathSwitch::to_port(Port& port, std::span<const std::uint8_t> frame) {
    if (port.broken) return;
    if (port.out.empty()) {
        ssize_t n;
        do {
            n = ::send(port.fd.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n >= 0) return;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            port.broken = true;
            return;
        }
    }
    if (port.out.size() >= kHardLimit) {
        ++totals_.dropped;
        return;
    }
    port.out.emplace_back(frame.begin(), frame.end());
}

bool SlowPathSwitch::flush(Port& port) {
    while (!port.out.empty()) {
        const auto& f = port.out.front();
        ssize_t n = ::send(port.fd.get(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        port.out.pop_front();
    }
    return true;
}

}  // namespace xover::crossover
