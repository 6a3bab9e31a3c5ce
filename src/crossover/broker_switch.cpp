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
#include "xover/crossover/switch_route.hpp"
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
// Port ids start at 1: "every port" when the frame came from the uplink.
constexpr std::uint64_t kNoPort = 0;
}  // namespace

struct SlowPathSwitch::Port {
    kvm::UniqueFd fd;
    bool greeted = false;
    SwitchHello hello;
    std::deque<std::vector<std::uint8_t>> out;
    std::map<net::MacAddress, std::chrono::steady_clock::time_point> reported;
    bool broken = false;
};

SlowPathSwitch::SlowPathSwitch(const std::filesystem::path& path, std::unique_ptr<SwitchUplink> uplink)
    : path_(path), uplink_(std::move(uplink)), buffer_(65536) {
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
    // The uplink is read under the same rule: while a port is backed up,
    // frames wait in the tap's own queue (which drops when full, as a wire would).
    uplink_polled_ = uplink_ && uplink_->receiving();
    if (uplink_polled_) fds.push_back({uplink_->fd(), short(stop_reading ? 0 : POLLIN), 0});
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
    if (uplink_polled_ && polled_.size() + 1 < fds.size()) {
        short ev = fds[polled_.size() + 1].revents;
        if (ev & POLLIN)
            read_uplink();
        else if (ev & (POLLERR | POLLHUP | POLLNVAL))
            uplink_->receive_failed("the tap reported an error");
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

SlowPathSwitch::Port* SlowPathSwitch::owner_of(const net::MacAddress& mac, PortId except) {
    for (auto& [id, port] : ports_)
        if (id != except && port->greeted && port->hello.mac == mac) return port.get();
    return nullptr;
}

bool SlowPathSwitch::flood(PortId except, std::span<const std::uint8_t> frame) {
    bool all = true;
    for (auto& [id, port] : ports_)
        if (id != except && port->greeted) all = to_port(*port, frame) && all;
    return all;
}

void SlowPathSwitch::forward(PortId from, std::span<const std::uint8_t> frame, std::vector<Seen>& seen) {
    ++totals_.frames;
    net::MacAddress dst;
    std::memcpy(dst.bytes.data(), frame.data(), 6);
    Port& src = *ports_.at(from);
    Port* owner = dst.is_multicast() ? nullptr : owner_of(dst, from);
    FrameFacts facts;
    facts.multicast_dst = dst.is_multicast();
    facts.dst_is_port = owner != nullptr;
    switch (route_frame(facts, uplink_ != nullptr)) {
        case Route::ToOwner: {
            to_port(*owner, frame);
            auto now = std::chrono::steady_clock::now();
            auto& last = src.reported[dst];
            if (now - last >= kSeenInterval) {
                last = now;
                seen.push_back({src.hello.mac, dst});
            }
            return;
        }
        case Route::ToUplink: uplink_->send(frame); return;
        case Route::FloodPortsAndUplink: uplink_->send(frame); [[fallthrough]];
        case Route::FloodPorts:
            ++totals_.flooded;  // broadcast, multicast (and unknown unicast without an uplink)
            flood(from, frame);
            return;
        case Route::DropUnknown:
        case Route::DropLooped: return;  // only for frames from the uplink
    }
}

void SlowPathSwitch::read_uplink() {
    for (unsigned i = 0; i < kReadBurst; ++i) {
        auto n = uplink_->receive(buffer_);
        if (!n) return;
        std::span<const std::uint8_t> frame(buffer_.data(), *n);
        if (frame.size() < 14) {
            uplink_->count_drop(SwitchUplink::Drop::Runt);
            continue;
        }
        forward_from_uplink(frame);
    }
}

void SlowPathSwitch::forward_from_uplink(std::span<const std::uint8_t> frame) {
    ++totals_.frames;
    net::MacAddress dst, src;
    std::memcpy(dst.bytes.data(), frame.data(), 6);
    std::memcpy(src.bytes.data(), frame.data() + 6, 6);
    Port* owner = dst.is_multicast() ? nullptr : owner_of(dst, kNoPort);
    FrameFacts facts;
    facts.from_uplink = true;
    facts.multicast_dst = dst.is_multicast();
    facts.dst_is_port = owner != nullptr;
    facts.src_is_port = owner_of(src, kNoPort) != nullptr;
    bool delivered = true;
    switch (route_frame(facts, true)) {
        case Route::ToOwner: delivered = to_port(*owner, frame); break;
        case Route::FloodPorts:
            ++totals_.flooded;
            delivered = flood(kNoPort, frame);
            break;
        case Route::DropUnknown: uplink_->count_drop(SwitchUplink::Drop::UnknownDst); return;
        case Route::DropLooped: uplink_->count_drop(SwitchUplink::Drop::Looped); return;
        case Route::ToUplink:
        case Route::FloodPortsAndUplink: return;  // never back out where it came from
    }
    if (delivered)
        uplink_->count_delivered(frame.size());
    else
        uplink_->count_drop(SwitchUplink::Drop::PortFull);
}

bool SlowPathSwitch::to_port(Port& port, std::span<const std::uint8_t> frame) {
    if (port.broken) return true;  // leaving: its frames go with it, not counted as drops
    if (port.out.empty()) {
        ssize_t n;
        do {
            n = ::send(port.fd.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n >= 0) return true;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            port.broken = true;
            return true;
        }
    }
    if (port.out.size() >= kHardLimit) {
        ++totals_.dropped;
        return false;
    }
    port.out.emplace_back(frame.begin(), frame.end());
    return true;
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
