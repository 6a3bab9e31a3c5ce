// Checks of single configuration values, shared by the TOML and flag
// readers so both refuse the same things with the same words.
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <variant>

#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/vm_name.hpp"
#include "xover/error.hpp"

namespace xover::vmm {

namespace config_detail {

std::string quote_value(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string mac_text(const net::MacAddress& mac) {
    const auto& b = mac.bytes;
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5]);
}

std::string check_name(const std::string& value, const std::string& origin) {
    if (value == "auto") throw Error("{}: \"auto\" is reserved (crossover = \"auto\"); pick another VM name", origin);
    if (!valid_vm_name(value))
        throw Error("{}: {} is not a valid VM name (letters, digits, '.', '_', '-', starting with a letter or digit, "
                    "at most {})",
                    origin, quote_value(value), kMaxVmName);
    return value;
}

std::uint64_t check_memory(std::uint64_t bytes, const std::string& shown, const std::string& origin) {
    if (bytes < kMinMemory) throw Error("{}: {} is less than the minimum memory of 16M", origin, quote_value(shown));
    if (bytes > kMaxMemory) throw Error("{}: {} is more than the maximum memory of 64G", origin, quote_value(shown));
    if (bytes % 4096 != 0) throw Error("{}: {} is not a multiple of 4K", origin, quote_value(shown));
    return bytes;
}

unsigned check_cpus(std::int64_t value, const std::string& origin) {
    if (value < 1 || value > kMaxCpus)
        throw Error("{}: {} vCPUs is out of range (1 to {})", origin, value, kMaxCpus);
    return static_cast<unsigned>(value);
}

std::string check_console(const std::string& value, const std::string& origin) {
    if (value == "stdout" || value == "none") return value;
    if (value.rfind("file:", 0) == 0 && value.size() > 5) return value;
    throw Error("{}: {} is not a console (use stdout, none or file:PATH)", origin, quote_value(value));
}

std::string check_log_level(const std::string& value, const std::string& origin) {
    static constexpr std::array kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(kLevels.begin(), kLevels.end(), value) != kLevels.end()) return value;
    throw Error("{}: {} is not a log level (use trace, debug, info, warn, error, critical or off)", origin,
                quote_value(value));
}

std::string check_cpu_template(const std::string& value, const std::string& origin) {
    // Same names as the machine's parse_cpu_template (src/vmm/cpuid.cpp).
    if (value.empty() || value == "host" || value == "baseline") return value;
    throw Error("{}: {} is not a CPU template (use host or baseline)", origin,
                quote_value(value));
}

SeccompMode check_seccomp(const std::string& value, const std::string& origin) {
    if (auto mode = parse_seccomp_mode(value)) return *mode;
    throw Error("{}: {} is not a seccomp mode (use kill, log or off)", origin, quote_value(value));
}

std::string check_api_socket(const std::string& value, const std::string& origin) {
    constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
    if (value.empty()) throw Error("{}: an empty path (give a socket path, or none)", origin);
    if (value.size() > kMaxSocketPath)
        throw Error("{}: {} is {} bytes, longer than a Unix socket path can be ({})", origin, quote_value(value),
                    value.size(), kMaxSocketPath);
    return value;
}

std::chrono::seconds check_metrics_interval(std::int64_t seconds, const std::string& origin) {
    if (seconds < 1 || seconds > kMaxMetricsInterval)
        throw Error("{}: {} seconds is out of range (1 to {})", origin, seconds, kMaxMetricsInterval);
    return std::chrono::seconds(seconds);
}

NicModel check_model(const std::string& value, const std::string& origin) {
    if (auto model = parse_nic_model(value)) return *model;
    throw Error("{}: {} is not a NIC model (use e1000 or virtio-net)", origin, quote_value(value));
}

CrossoverMode check_mode(const std::string& value, const std::string& origin) {
    if (auto mode = parse_crossover_mode(value)) return *mode;
    throw Error("{}: {} is not a crossover mode (use copy or window)", origin, quote_value(value));
}

bool check_on_off(const std::string& value, const std::string& origin) {
    if (value == "on") return true;
    if (value == "off") return false;
    throw Error("{}: {} is not on or off", origin, quote_value(value));
}

void check_nic(const NicConfig& nic, const std::string& where) {
    if (nic.ioeventfd == false && nic.model != NicModel::VirtioNet)
        throw Error("{}: ioeventfd=off is for virtio-net NICs (an {} has no queue notifies)", where,
                    to_string(nic.model));
}

std::vector<std::string> split_peers(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find_first_of("+,", start);
        if (end == std::string_view::npos) end = text.size();
        out.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::vector<std::string> check_crossover(const std::vector<std::string>& names, const std::string& origin) {
    std::vector<std::string> out;
    const bool has_auto = std::find(names.begin(), names.end(), "auto") != names.end();
    if (has_auto && names.size() > 1)
        throw Error("{}: \"auto\" cannot be combined with peer names (use either \"auto\" or a list of VMs)", origin);
    if (has_auto) return {"auto"};
    for (const auto& name : names) {
        if (name.empty()) throw Error("{}: empty crossover peer name", origin);
        check_name(name, origin);
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return out;
}

std::filesystem::path anchor(const std::filesystem::path& p, const std::filesystem::path& base_dir) {
    if (p.is_absolute() || base_dir.empty()) return p;
    return base_dir / p;
}

void check_readable_file(const std::filesystem::path& path, const std::string& origin) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec) throw Error("{}: {} cannot be read: {}", origin, quote_value(path.string()), ec.message());
    if (!std::filesystem::is_regular_file(status))
        throw Error("{}: {} cannot be read: not a regular file", origin, quote_value(path.string()));
    if (::access(path.c_str(), R_OK) != 0)
        throw Error("{}: {} cannot be read: {}", origin, quote_value(path.string()), std::strerror(errno));
}

void check_writable_file(const std::filesystem::path& path, const std::string& origin) {
    const std::string shown = quote_value(path.string());
    if (path.empty()) throw Error("{}: the path is empty", origin);
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) {
        const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
        if (!std::filesystem::is_directory(dir, ec))
            throw Error("{}: {} cannot be created: there is no directory {}", origin, shown, quote_value(dir.string()));
        if (::access(dir.c_str(), W_OK | X_OK) != 0)
            throw Error("{}: {} cannot be created in {}: {}", origin, shown, quote_value(dir.string()),
                        std::strerror(errno));
        return;
    }
    if (ec) throw Error("{}: {} cannot be written: {}", origin, shown, ec.message());
    if (std::filesystem::is_directory(status))
        throw Error("{}: {} cannot be written: it is a directory", origin, shown);
    if (::access(path.c_str(), W_OK) != 0)
        throw Error("{}: {} cannot be written: {}", origin, shown, std::strerror(errno));
}

std::string key_origin(const std::string& file, const toml::node& node, const std::string& key) {
    const auto line = node.source().begin.line;
    if (line == 0) return fmt::format("{}: key \"{}\"", file, key);
    return fmt::format("{}:{}: key \"{}\"", file, line, key);
}

}  // namespace config_detail

std::string check_vm_name(const std::string& value, const std::string& origin) {
    return config_detail::check_name(value, origin);
}

StatsMode parse_stats_flag(const std::string& value, const std::string& flag) {
    if (auto mode = parse_stats_mode(value)) return *mode;
    throw Error("{}: {} is not a choice of counters (use {} for those that are not 0, or {}=all)", flag,
                config_detail::quote_value(value), flag, flag);
}

bool uses_ioeventfd(const NicConfig& nic) { return nic.ioeventfd.value_or(nic.crossover.empty()); }

bool uses_broker(const VmConfig& vm) {
    for (const auto& nic : vm.nics)
        if (!nic.crossover.empty() || std::holds_alternative<net::BrokerSpec>(nic.backend)) return true;
    for (const auto& sound : vm.sounds)
        if (sound.crossover) return true;
    return false;
}

net::MacAddress parse_mac(std::string_view text) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    net::MacAddress mac;
    bool ok = text.size() == 17;
    for (std::size_t i = 0; ok && i < 6; ++i) {
        const int hi = hex(text[i * 3]), lo = hex(text[i * 3 + 1]);
        ok = hi >= 0 && lo >= 0 && (i == 5 || text[i * 3 + 2] == ':');
        if (ok) mac.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    if (!ok) throw Error("{} is not a MAC address (use 52:54:00:12:34:56)", config_detail::quote_value(text));
    if (mac.is_multicast())
        throw Error("{} is a multicast address; a NIC needs a unicast MAC (first byte even)",
                    config_detail::quote_value(text));
    if (mac.bytes == std::array<std::uint8_t, 6>{}) throw Error("\"00:00:00:00:00:00\" is not a usable MAC address");
    return mac;
}

net::MacAddress default_mac(std::string_view vm_name, std::size_t index) {
    // FNV-1a, 32 bit, over "<name>/<index>": tiny, stable, well spread.
    const std::string key = fmt::format("{}/{}", vm_name, index);
    std::uint32_t hash = 2166136261u;
    for (unsigned char c : key) {
        hash ^= c;
        hash *= 16777619u;
    }
    return net::MacAddress{{0x52, 0x54, 0x00, static_cast<std::uint8_t>(hash >> 16),
                            static_cast<std::uint8_t>(hash >> 8), static_cast<std::uint8_t>(hash)}};
}

}  // namespace xover::vmm
