// Reading one VM's keys from a TOML table into a ConfigLayer. Each value is
// type-checked and checked on its own here, with the file, line and key in
// the message.
#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm::config_detail {

namespace {

constexpr const char* kVmKeys =
    "name, kernel, cmdline, initrd, mem, cpus, console, stats, metrics, metrics_interval, api_socket, log_level, "
    "cpu_template, "
    "seccomp, broker, crossover, nic, sound";
constexpr const char* kNicKeys = "model, mac, backend, crossover, mode, ioeventfd";

std::string type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time: return "a date/time";
        case toml::node_type::array: return "an array";
        case toml::node_type::table: return "a table";
        default: return "nothing";
    }
}

[[noreturn]] void wrong_type(const std::string& origin, const toml::node& node, std::string_view expected) {
    if (auto s = node.as_string())
        throw Error("{}: expected {}, got the string {}", origin, expected, quote_value(s->get()));
    if (auto i = node.as_integer()) throw Error("{}: expected {}, got the integer {}", origin, expected, i->get());
    throw Error("{}: expected {}, got {}", origin, expected, type_name(node));
}

std::string get_string(const toml::node& node, const std::string& origin) {
    if (auto s = node.as_string()) return s->get();
    wrong_type(origin, node, "a string");
}

// Rethrows a context-free error (parse_size, parse_mac) with its origin.
template <typename F>
auto with_origin(const std::string& origin, F&& f) {
    try {
        return f();
    } catch (const Error& e) {
        throw Error("{}: {}", origin, e.what());
    }
}

// crossover = ["a", "b"] | "auto" | "a"
std::vector<std::string> get_peers(const toml::node& node, const std::string& origin) {
    std::vector<std::string> names;
    if (auto s = node.as_string()) {
        names.push_back(s->get());
    } else if (auto arr = node.as_array()) {
        for (const auto& el : *arr) {
            auto s = el.as_string();
            if (!s) wrong_type(origin, el, "VM names (strings)");
            names.push_back(s->get());
        }
    } else {
        wrong_type(origin, node, "an array of VM names or \"auto\"");
    }
    return check_crossover(names, origin);
}

// `shown` prefixes key names in messages ("vm[1].nic[0]."), `field` is the
// prefix of the layer's origin entries ("nic[0].").
NicConfig nic_from_table(const toml::table& table, const std::string& file, const std::string& shown,
                         const std::string& field_prefix, ConfigLayer& layer) {
    NicConfig nic;
    for (const auto& [k, node] : table) {
        const std::string key(k.str());
        const std::string origin = key_origin(file, node, shown + key);
        if (key == "model") nic.model = check_model(get_string(node, origin), origin);
        else if (key == "mac") {
            // A named reference, not the binding: clang 14 (the fuzz build)
            // cannot capture structured bindings in a lambda.
            const toml::node& value = node;
            nic.mac = with_origin(origin, [&] { return parse_mac(get_string(value, origin)); });
        }
        else if (key == "backend") nic.backend = check_backend(get_string(node, origin), origin);
        else if (key == "crossover") nic.crossover = get_peers(node, origin);
        else if (key == "mode") nic.crossover_mode = check_mode(get_string(node, origin), origin);
        else if (key == "ioeventfd") {
            auto b = node.as_boolean();
            if (!b) wrong_type(origin, node, "true or false");
            nic.ioeventfd = b->get();
        } else throw Error("{}: unknown key (known in [[nic]]: {})", origin, kNicKeys);
        layer.origin[field_prefix + key] = origin;
    }
    check_nic(nic, key_origin(file, table, shown + "ioeventfd"));
    return nic;
}

// A [[sound]] table; relative wav: paths are taken relative to `base_dir`.
SoundConfig sound_from_table(const toml::table& table, const std::string& file, const std::string& shown,
                             const std::string& field_prefix, const std::filesystem::path& base_dir,
                             ConfigLayer& layer) {
    SoundConfig sound;
    std::optional<unsigned> rate, channels;
    for (const auto& [k, node] : table) {
        const std::string key(k.str());
        const std::string origin = key_origin(file, node, shown + key);
        if (key == "model") {
            sound.model = check_sound_model(get_string(node, origin), origin);
        } else if (key == "backend") {
            sound.backend = anchor_sound_backend(check_sound_backend(get_string(node, origin), origin), base_dir);
        } else if (key == "crossover") {
            auto s = node.as_string();
            if (!s) wrong_type(origin, node, "a VM name (a string)");
            sound.crossover = check_sound_peer(s->get(), origin);
        } else if (key == "rate" || key == "channels") {
            auto i = node.as_integer();
            if (!i) wrong_type(origin, node, "an integer");
            if (key == "rate")
                rate = check_sound_rate(i->get(), origin);
            else
                channels = check_sound_channels(i->get(), origin);
        } else {
            throw Error("{}: unknown key (known in [[sound]]: {})", origin, kSoundKeys);
        }
        layer.origin[field_prefix + key] = origin;
    }
    finish_sound(sound, rate, channels, key_origin(file, table, shown.substr(0, shown.size() - 1)));
    return sound;
}

}  // namespace

ConfigLayer layer_from_table(const toml::table& table, const std::string& file, const std::string& key_prefix,
                             const std::filesystem::path& base_dir) {
    ConfigLayer layer;
    for (const auto& [k, node] : table) {
        const std::string key(k.str());
        const std::string origin = key_origin(file, node, key_prefix + key);
        if (key == "name") {
            layer.name = check_name(get_string(node, origin), origin);
        } else if (key == "kernel") {
            layer.kernel = anchor(get_string(node, origin), base_dir);
        } else if (key == "cmdline") {
            layer.cmdline = get_string(node, origin);
        } else if (key == "initrd") {
            layer.initrd = anchor(get_string(node, origin), base_dir);
        } else if (key == "mem") {
            if (auto i = node.as_integer()) {
                if (i->get() < 0) throw Error("{}: {} is not a size (use 64M, 1G)", origin, i->get());
                layer.memory_bytes = check_memory(std::uint64_t(i->get()), std::to_string(i->get()), origin);
            } else if (auto s = node.as_string()) {
                const auto bytes = with_origin(origin, [&] { return parse_size(s->get()); });
                layer.memory_bytes = check_memory(bytes, s->get(), origin);
            } else {
                wrong_type(origin, node, "a size such as \"128M\" or a number of bytes");
            }
        } else if (key == "cpus") {
            auto i = node.as_integer();
            if (!i) wrong_type(origin, node, "an integer");
            layer.cpus = check_cpus(i->get(), origin);
        } else if (key == "console") {
            std::string value = check_console(get_string(node, origin), origin);
            if (value.rfind("file:", 0) == 0) value = "file:" + anchor(value.substr(5), base_dir).string();
            layer.console = value;
        } else if (key == "stats") {
            auto b = node.as_boolean();
            auto s = node.as_string();
            if (b) layer.stats = b->get() ? StatsMode::NonZero : StatsMode::Off;
            else if (s && s->get() == to_string(StatsMode::All)) layer.stats = StatsMode::All;
            else wrong_type(origin, node, "true, false or \"all\"");
        } else if (key == "api_socket") {
            std::string value = check_api_socket(get_string(node, origin), origin);
            layer.api_socket = value == "none" ? value : anchor(value, base_dir).string();
        } else if (key == "metrics") {
            layer.metrics = anchor(get_string(node, origin), base_dir);
        } else if (key == "metrics_interval") {
            auto i = node.as_integer();
            if (!i) wrong_type(origin, node, "a number of seconds");
            layer.metrics_interval = check_metrics_interval(i->get(), origin);
        } else if (key == "log_level") {
            layer.log_level = check_log_level(get_string(node, origin), origin);
        } else if (key == "cpu_template") {
            layer.cpu_template = check_cpu_template(get_string(node, origin), origin);
        } else if (key == "seccomp") {
            layer.seccomp = check_seccomp(get_string(node, origin), origin);
        } else if (key == "broker") {
            std::string value = get_string(node, origin);
            if (value.empty()) throw Error("{}: the broker socket path is empty", origin);
            layer.broker = anchor(value, base_dir);
        } else if (key == "crossover") {
            layer.crossover = get_peers(node, origin);
        } else if (key == "nic") {
            auto arr = node.as_array();
            if (!arr || !arr->is_array_of_tables()) wrong_type(origin, node, "[[nic]] tables");
            std::vector<NicConfig> nics;
            for (std::size_t i = 0; i < arr->size(); ++i) {
                const std::string field = fmt::format("nic[{}]", i);
                const std::string shown = key_prefix + field;
                layer.origin[field] = key_origin(file, *arr->get(i), shown);
                nics.push_back(nic_from_table(*arr->get(i)->as_table(), file, shown + ".", field + ".", layer));
            }
            layer.nics = std::move(nics);
        } else if (key == "sound") {
            auto arr = node.as_array();
            if (!arr || !arr->is_array_of_tables()) wrong_type(origin, node, "[[sound]] tables");
            std::vector<SoundConfig> sounds;
            for (std::size_t i = 0; i < arr->size(); ++i) {
                const std::string field = fmt::format("sound[{}]", i);
                const std::string shown = key_prefix + field;
                layer.origin[field] = key_origin(file, *arr->get(i), shown);
                check_sound_count(i, layer.origin[field]);
                sounds.push_back(
                    sound_from_table(*arr->get(i)->as_table(), file, shown + ".", field + ".", base_dir, layer));
            }
            layer.sounds = std::move(sounds);
        } else {
            throw Error("{}: unknown key (known: {})", origin, kVmKeys);
        }
        // Recorded under the bare key; NIC and sound sub-keys went in as "nic[i].key", "sound[i].key".
        layer.origin[key] = origin;
    }
    return layer;
}

}  // namespace xover::vmm::config_detail
