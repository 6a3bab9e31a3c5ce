// Syntax of backend specs. IPv6 hosts are written in brackets: "[::1]:5555".
#include "xover/net/backend_spec.hpp"

#include <charconv>
#include <string_view>
#include <type_traits>

#include "xover/error.hpp"

namespace xover::net {
namespace {

[[noreturn]] void bad(const std::string& spec, std::string_view why) {
    throw Error("invalid network backend '{}': {} (expected none, broker, tap:IFNAME, udp:[LHOST:]LPORT@RHOST:RPORT, "
                "stream-listen:HOST:PORT, stream-connect:HOST:PORT or vhost-user:PATH[,server])",
                spec, why);
}

std::uint16_t parse_port(const std::string& spec, std::string_view text, std::string_view what) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
        bad(spec, fmt::format("{} '{}' is not a number", what, text));
    if (value == 0 || value > 65535) bad(spec, fmt::format("{} {} is out of range 1-65535", what, value));
    return std::uint16_t(value);
}

// "HOST:PORT" or "[V6HOST]:PORT"; the host may not be empty.
HostPort parse_host_port(const std::string& spec, std::string_view text, std::string_view what) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) bad(spec, fmt::format("{} '{}' has no closing ']'", what, text));
        host = text.substr(1, close - 1);
        if (close + 1 >= text.size() || text[close + 1] != ':')
            bad(spec, fmt::format("{} '{}' needs ':PORT' after the ']'", what, text));
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) bad(spec, fmt::format("{} '{}' needs HOST:PORT", what, text));
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            bad(spec, fmt::format("{} '{}': write IPv6 hosts in brackets, [::1]:PORT", what, text));
    }
    if (host.empty()) bad(spec, fmt::format("{} '{}' has an empty host", what, text));
    return HostPort{std::string(host), parse_port(spec, port, fmt::format("{} port", what))};
}

// Linux's rules for interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..".
void check_ifname(const std::string& spec, std::string_view name) {
    if (name.empty()) bad(spec, "the tap interface name is empty");
    if (name.size() > 15) bad(spec, fmt::format("tap interface name '{}' is longer than 15 characters", name));
    if (name == "." || name == "..") bad(spec, fmt::format("'{}' is not a valid interface name", name));
    for (char c : name) {
        if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            bad(spec, fmt::format("tap interface name '{}' contains '{}'", name, c == '/' || c == ':' ? c : ' '));
    }
}

UdpSpec parse_udp(const std::string& spec, std::string_view rest) {
    auto at = rest.find('@');
    if (at == std::string_view::npos) bad(spec, "udp needs LPORT@RHOST:RPORT");
    std::string_view local = rest.substr(0, at);
    UdpSpec udp;
    udp.remote = parse_host_port(spec, rest.substr(at + 1), "remote address");
    bool has_host = local.find(':') != std::string_view::npos || (!local.empty() && local.front() == '[');
    if (has_host) {
        HostPort l = parse_host_port(spec, local, "local address");
        udp.local_host = l.host;
        udp.local_port = l.port;
    } else {
        udp.local_port = parse_port(spec, local, "local port");
    }
    return udp;
}

std::string host_port_text(const std::string& host, std::uint16_t port) {
    if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

}  // namespace

BackendSpec parse_backend_spec(const std::string& spec) {
    std::string_view s = spec;
    auto starts = [&](std::string_view prefix) {
        if (s.substr(0, prefix.size()) != prefix) return false;
        s.remove_prefix(prefix.size());
        return true;
    };
    if (s == "none") return NoneSpec{};
    if (s == "broker") return BrokerSpec{};
    if (starts("tap:")) {
        check_ifname(spec, s);
        return TapSpec{std::string(s)};
    }
    if (starts("udp:")) return parse_udp(spec, s);
    if (starts("stream-listen:"))
        return StreamSpec{StreamSpec::Role::Listen, parse_host_port(spec, s, "listen address")};
    if (starts("stream-connect:"))
        return StreamSpec{StreamSpec::Role::Connect, parse_host_port(spec, s, "connect address")};
    if (starts("vhost-user:")) {
        VhostUserSpec v;
        constexpr std::string_view kServer = ",server";
        if (s.size() >= kServer.size() && s.substr(s.size() - kServer.size()) == kServer) {
            v.server = true;
            s.remove_suffix(kServer.size());
        }
        if (s.empty()) bad(spec, "vhost-user needs the back-end's socket path");
        if (s.find(',') != std::string_view::npos) bad(spec, "the vhost-user socket path may not contain ','");
        v.path = std::string(s);
        return v;
    }
    if (s.empty()) bad(spec, "it is empty");
    bad(spec, "unknown backend type");
}

std::string to_string(const BackendSpec& spec) {
    return std::visit(
        [](const auto& parsed) -> std::string {
            using T = std::decay_t<decltype(parsed)>;
            if constexpr (std::is_same_v<T, NoneSpec>) return "none";
            else if constexpr (std::is_same_v<T, BrokerSpec>) return "broker";
            else if constexpr (std::is_same_v<T, TapSpec>) return "tap:" + parsed.ifname;
            else if constexpr (std::is_same_v<T, VhostUserSpec>) return "vhost-user:" + parsed.path + (parsed.server ? ",server" : "");
            else if constexpr (std::is_same_v<T, UdpSpec>) {
                std::string local = parsed.local_host ? host_port_text(*parsed.local_host, parsed.local_port)
                                                      : std::to_string(parsed.local_port);
                return fmt::format("udp:{}@{}", local, host_port_text(parsed.remote.host, parsed.remote.port));
            } else {
                const char* role = parsed.role == StreamSpec::Role::Listen ? "stream-listen" : "stream-connect";
                return fmt::format("{}:{}", role, host_port_text(parsed.address.host, parsed.address.port));
            }
        },
        spec);
}

}  // namespace xover::net
