// NIC settings: the --nic spec string, and the backend-spec check.
#include <charconv>
#include <optional>

#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm {

namespace {

// The reason a config message gives for a bad spec ("" when fine). Kept
// for its wording; net::parse_backend_spec then parses what passes, and
// also refuses a little more (interface names "." and "..", for one).
std::string backend_problem(std::string_view s) {
    auto port_ok = [](std::string_view p) {
        unsigned v = 0;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        return !p.empty() && ec == std::errc{} && end == p.data() + p.size() && v >= 1 && v <= 65535;
    };
    // HOST:PORT or [V6]:PORT with a non-empty host.
    auto host_port_ok = [&](std::string_view hp) {
        std::string_view host, port;
        if (!hp.empty() && hp.front() == '[') {
            auto close = hp.find("]:");
            if (close == std::string_view::npos) return false;
            host = hp.substr(1, close - 1), port = hp.substr(close + 2);
        } else {
            auto colon = hp.rfind(':');
            if (colon == std::string_view::npos) return false;
            host = hp.substr(0, colon), port = hp.substr(colon + 1);
            if (host.find(':') != std::string_view::npos) return false;
        }
        return !host.empty() && port_ok(port);
    };
    auto rest_after = [&](std::string_view prefix) -> std::optional<std::string_view> {
        if (s.substr(0, prefix.size()) != prefix) return std::nullopt;
        return s.substr(prefix.size());
    };

    if (s == "none" || s == "broker") return "";  // broker: the broker's slow-path switch
    if (auto path = rest_after("vhost-user:")) {
        std::string_view p = *path;
        if (p.size() >= 7 && p.substr(p.size() - 7) == ",server") p.remove_suffix(7);
        if (p.empty()) return "vhost-user needs the back-end's socket path";
        if (p.find(',') != std::string_view::npos) return "the vhost-user socket path may not contain ','";
        return "";
    }
    if (auto ifname = rest_after("tap:")) {
        if (ifname->empty() || ifname->size() > 15) return "the tap interface name must be 1 to 15 characters";
        if (ifname->find_first_of("/: \t\n") != std::string_view::npos)
            return "the tap interface name may not contain '/', ':' or spaces";
        return "";
    }
    if (auto udp = rest_after("udp:")) {
        auto at = udp->find('@');
        if (at == std::string_view::npos) return "udp needs [LHOST:]LPORT@RHOST:RPORT";
        std::string_view local = udp->substr(0, at), remote = udp->substr(at + 1);
        const bool local_ok = port_ok(local) || host_port_ok(local);
        if (!local_ok) return fmt::format("bad local port/address '{}'", local);
        if (!host_port_ok(remote)) return fmt::format("bad remote address '{}' (use HOST:PORT)", remote);
        return "";
    }
    for (std::string_view prefix : {"stream-listen:", "stream-connect:"}) {
        if (auto hp = rest_after(prefix)) {
            if (!host_port_ok(*hp)) return fmt::format("bad address '{}' (use HOST:PORT, [V6]:PORT)", *hp);
            return "";
        }
    }
    return s.empty() ? "it is empty" : "unknown backend type";
}

}  // namespace

namespace config_detail {

net::BackendSpec check_backend(const std::string& value, const std::string& origin) {
    const std::string problem = backend_problem(value);
    if (!problem.empty())
        throw Error("{}: {} is not a valid backend: {} (use none, broker, tap:IFNAME, udp:[LHOST:]LPORT@RHOST:RPORT, "
                    "stream-listen:HOST:PORT, stream-connect:HOST:PORT or vhost-user:PATH[,server])",
                    origin, quote_value(value), problem);
    try {
        return net::parse_backend_spec(value);
    } catch (const std::exception& e) {
        throw Error("{}: {}", origin, e.what());
    }
}

std::string check_uplink(const std::string& value, const std::string& origin) {
    const std::string problem = value.rfind("tap:", 0) == 0 ? backend_problem(value) : "it is not a tap";
    if (!problem.empty())
        throw Error("{}: {} is not a valid uplink: {} (use \"tap:IFNAME\" with an existing tap: "
                    "ip tuntap add IFNAME mode tap)",
                    origin, quote_value(value), problem);
    return value;
}

}  // namespace config_detail

NicConfig parse_nic_spec(std::string_view spec, const std::string& where) {
    using namespace config_detail;
    NicConfig nic;
    for_each_spec_item(
        spec, where, "model, mac, backend, crossover, mode, ioeventfd",
        [&](const std::string& model) { nic.model = check_model(model, where); },
        [&](const std::string& key, const std::string& value, std::string_view, const std::string& origin) {
            if (key == "model") {
                nic.model = check_model(value, origin);
            } else if (key == "mac") {
                try {
                    nic.mac = parse_mac(value);
                } catch (const Error& e) {
                    throw Error("{}: {}", origin, e.what());
                }
            } else if (key == "backend") {
                nic.backend = check_backend(value, origin);
            } else if (key == "crossover") {
                nic.crossover = check_crossover(split_peers(value), origin);
            } else if (key == "mode") {
                nic.crossover_mode = check_mode(value, origin);
            } else if (key == "ioeventfd") {
                nic.ioeventfd = check_on_off(value, origin);
            } else {
                return false;
            }
            return true;
        },
        [&](std::string_view item) {
            // "backend=vhost-user:PATH,server": the comma split the backend.
            if (item != "server" || !std::holds_alternative<net::VhostUserSpec>(nic.backend)) return false;
            std::get<net::VhostUserSpec>(nic.backend).server = true;
            return true;
        });
    check_nic(nic, where);
    return nic;
}

}  // namespace xover::vmm
