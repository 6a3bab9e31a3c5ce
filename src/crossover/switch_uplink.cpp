// The switch's tap uplink (see switch_uplink.hpp).
#include "xover/crossover/switch_uplink.hpp"

#include <sys/socket.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/net/backend_spec.hpp"
#include "xover/net/tap_device.hpp"

namespace xover::crossover {

const char* SwitchUplink::name(Drop reason) {
    switch (reason) {
        case Drop::TapFull: return "tap_full";
        case Drop::LinkDown: return "link_down";
        case Drop::TapError: return "tap_error";
        case Drop::UnknownDst: return "unknown_dst";
        case Drop::Looped: return "looped";
        case Drop::Runt: return "runt";
        case Drop::PortFull: return "port_full";
        case Drop::kCount: break;
    }
    return "?";
}

std::unique_ptr<SwitchUplink> SwitchUplink::open(const std::string& spec) {
    if (spec.rfind("tap:", 0) != 0)
        throw Error("uplink '{}': expected tap:IFNAME (the switch's uplink is a tap device)", spec);
    net::BackendSpec parsed;
    try {
        parsed = net::parse_backend_spec(spec);
    } catch (const Error&) {
        throw Error("uplink '{}': '{}' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)",
                    spec, spec.substr(4));
    }
    const auto& tap = std::get<net::TapSpec>(parsed);
    // An uplink attaches to what the administrator set up (and maybe
    // bridged); a tap made here would vanish with the broker.
    kvm::UniqueFd fd = net::open_tap(tap.ifname, net::TapMissing::Refuse);
    net::bring_tap_up(tap.ifname);
    spdlog::info("broker switch: uplink tap:{} attached", tap.ifname);
    return std::make_unique<SwitchUplink>(std::move(fd), "tap:" + tap.ifname, tap.ifname);
}

SwitchUplink::SwitchUplink(kvm::UniqueFd fd, std::string description, std::string ifname)
    : fd_(std::move(fd)),
      query_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)),
      description_(std::move(description)),
      ifname_(std::move(ifname)) {}

std::optional<std::size_t> SwitchUplink::receive(std::span<std::uint8_t> buffer) {
    while (receiving_) {
        ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
        if (n > 0) return std::size_t(n);
        if (n == 0) {  // a tap never reads empty; a closed stand-in (tests) does
            receive_failed("end of file");
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        receive_failed(std::strerror(errno));
    }
    return std::nullopt;
}

void SwitchUplink::receive_failed(const char* why) {
    // A deleted interface leaves the fd readable with an error forever:
    // stop polling it rather than spin. Frames to it are still counted.
    ++counters_.read_errors;
    receiving_ = false;
    spdlog::error("broker switch: uplink {}: read: {}; no longer receiving from it", description_, why);
}

void SwitchUplink::send(std::span<const std::uint8_t> frame) {
    for (;;) {
        ssize_t n = ::write(fd_.get(), frame.data(), frame.size());
        if (n == ssize_t(frame.size())) {
            ++counters_.to_tap_frames;
            counters_.to_tap_bytes += frame.size();
            return;
        }
        if (n < 0 && errno == EINTR) continue;
        const int err = n < 0 ? errno : EMSGSIZE;
        Drop reason = Drop::TapError;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) reason = Drop::TapFull;
        if (err == EIO) reason = Drop::LinkDown;  // the tap driver's answer while the interface is down
        count_drop(reason);
        if (!logged_[std::size_t(reason)]) {
            logged_[std::size_t(reason)] = true;
            spdlog::warn("broker switch: uplink {}: write: {} (frame dropped; further drops are only counted)",
                         description_, std::strerror(err));
        }
        return;
    }
}

void SwitchUplink::count_delivered(std::size_t bytes) {
    ++counters_.from_tap_frames;
    counters_.from_tap_bytes += bytes;
}

void SwitchUplink::count_drop(Drop reason) { ++counters_.dropped[std::size_t(reason)]; }

std::string SwitchUplink::link() const {
    return ifname_.empty() ? "-" : net::to_string(net::tap_link(ifname_, query_.get()));
}

std::string SwitchUplink::status_text() const {
    const Counters& c = counters_;
    std::string drops;
    for (std::size_t i = 0; i < c.dropped.size(); ++i)
        drops += fmt::format(" {}={}", name(Drop(i)), c.dropped[i]);
    return fmt::format(
        "Uplink: {} (link {}{})\n"
        "  to tap:   frames {} bytes {}\n"
        "  from tap: frames {} bytes {}\n"
        "  dropped: {} read_errors={}\n",
        description_, link(), receiving_ ? "" : ", not receiving", c.to_tap_frames, c.to_tap_bytes,
        c.from_tap_frames, c.from_tap_bytes, drops, c.read_errors);
}

Json SwitchUplink::status_json() const {
    const Counters& c = counters_;
    Json drops = Json::object();
    for (std::size_t i = 0; i < c.dropped.size(); ++i) drops[name(Drop(i))] = c.dropped[i];
    return Json{{"port", description_},
                {"link", link()},
                {"receiving", receiving_},
                {"to_tap", {{"frames", c.to_tap_frames}, {"bytes", c.to_tap_bytes}}},
                {"from_tap", {{"frames", c.from_tap_frames}, {"bytes", c.from_tap_bytes}}},
                {"dropped", std::move(drops)},
                {"read_errors", c.read_errors}};
}

}  // namespace xover::crossover
