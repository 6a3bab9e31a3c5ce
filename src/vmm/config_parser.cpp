// The public entry points: `xover run` (file + flags), one [[vm]] table,
// and `xover up` files with their cross-VM checks.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <variant>

#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm {

namespace {

using namespace config_detail;

toml::table parse_toml_file(const std::filesystem::path& path, const std::string& origin) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        check_readable_file(path, origin);  // throws with the reason
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("{}: cannot read {}", origin, path.string());
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const std::string ascii = asciify_toml(text, path.string());
    try {
        return toml::parse(ascii, path.string());
    } catch (const toml::parse_error& e) {
        const auto& pos = e.source().begin;
        throw Error("{}:{}:{}: TOML syntax error: {}", path.string(), pos.line, pos.column, e.description());
    }
}

// A config built by hand, as a layer with every field set and no origins,
// so finalize() can check it like any other.
ConfigLayer layer_from_config(const VmConfig& cfg, const std::string& where) {
    auto origin = [&](const char* key) { return fmt::format("{}: key \"{}\"", where, key); };
    ConfigLayer layer;
    layer.name = check_name(cfg.name, origin("name"));
    layer.kernel = cfg.kernel;
    layer.cmdline = cfg.cmdline;
    layer.initrd = cfg.initrd;
    layer.memory_bytes = check_memory(cfg.memory_bytes, std::to_string(cfg.memory_bytes), origin("mem"));
    layer.cpus = check_cpus(cfg.cpus, origin("cpus"));
    layer.console = check_console(cfg.console, origin("console"));
    layer.stats = cfg.stats;
    layer.metrics = cfg.metrics;
    if (cfg.metrics)
        layer.metrics_interval = check_metrics_interval(cfg.metrics_interval.count(), origin("metrics_interval"));
    if (!cfg.api_socket.empty()) layer.api_socket = check_api_socket(cfg.api_socket, origin("api_socket"));
    layer.log_level = check_log_level(cfg.log_level, origin("log_level"));
    layer.cpu_template = check_cpu_template(cfg.cpu_template, origin("cpu_template"));
    layer.seccomp = cfg.seccomp;
    layer.broker = cfg.broker;
    layer.nics = cfg.nics;
    for (std::size_t i = 0; i < cfg.nics.size(); ++i) {
        auto& nic = (*layer.nics)[i];
        const std::string prefix = fmt::format("{}: key \"nic[{}].", where, i);
        // Model and mode are enums, right by construction; a spec built by
        // hand is checked as its text.
        nic.backend = check_backend(net::to_string(nic.backend), prefix + "backend\"");
        nic.crossover = check_crossover(nic.crossover, prefix + "crossover\"");
        if (nic.mac && (nic.mac->is_multicast() || nic.mac->bytes == decltype(nic.mac->bytes){}))
            throw Error("{}mac\": {} is not a unicast MAC address", prefix, mac_text(*nic.mac));
    }
    layer.sounds = cfg.sounds;
    for (std::size_t i = 0; i < cfg.sounds.size(); ++i) {
        auto& sound = (*layer.sounds)[i];
        const std::string prefix = fmt::format("{}: key \"sound[{}]", where, i);
        check_sound_count(i, prefix + "\"");
        // The model is an enum, right by construction; a spec built by hand
        // is checked as its text.
        sound.backend = check_sound_backend(sound::to_string(sound.backend), prefix + ".backend\"");
        if (sound.crossover) sound.crossover = check_sound_peer(*sound.crossover, prefix + ".crossover\"");
        std::optional<unsigned> rate, channels;
        if (sound.format) {
            rate = check_sound_rate(sound.format->rate, prefix + ".rate\"");
            channels = check_sound_channels(sound.format->channels, prefix + ".channels\"");
        }
        finish_sound(sound, rate, channels, prefix + "\"");
    }
    return layer;
}

}  // namespace

VmConfig resolve_run_config(const RunOptions& opts) {
    ConfigLayer file_layer;
    std::string where = "command line";
    if (opts.config) {
        const auto table = parse_toml_file(*opts.config, "--config");
        where = opts.config->string();
        file_layer = layer_from_table(table, where, "", opts.config->parent_path());
    }
    return finalize(merge(std::move(file_layer), layer_from_flags(opts)), where);
}

VmConfig parse_vm_table(const toml::table& table, const std::string& where, const std::filesystem::path& base_dir) {
    return finalize(layer_from_table(table, where, "", base_dir), where);
}

void validate_vm_config(VmConfig& config, const std::string& where) {
    config = finalize(layer_from_config(config, where), where);
}

std::vector<VmConfig> load_up_file(const std::filesystem::path& path) { return read_up_file(path).vms; }

UpConfig read_up_file(const std::filesystem::path& path) {
    const std::string file = path.string();
    const auto table = parse_toml_file(path, file);
    const auto base_dir = path.parent_path();

    std::optional<std::filesystem::path> broker;
    std::optional<std::string> uplink;
    std::string uplink_origin;
    const toml::array* vms = nullptr;
    for (const auto& [k, node] : table) {
        const std::string key(k.str());
        const std::string origin = key_origin(file, node, key);
        if (key == "broker") {
            auto s = node.as_string();
            if (!s || s->get().empty()) throw Error("{}: expected the broker socket path (a string)", origin);
            broker = anchor(s->get(), base_dir);
        } else if (key == "uplink") {
            auto s = node.as_string();
            if (!s) throw Error("{}: expected \"tap:IFNAME\" (a string)", origin);
            uplink = check_uplink(s->get(), origin);
            uplink_origin = origin;
        } else if (key == "vm") {
            vms = node.as_array();
            if (!vms || !vms->is_array_of_tables()) throw Error("{}: expected [[vm]] tables", origin);
        } else {
            throw Error("{}: unknown key (known at top level: broker, uplink, vm; VM settings go in [[vm]] tables)", origin);
        }
    }
    if (!vms || vms->empty()) throw Error("{}: no [[vm]] tables; an up file describes its VMs as [[vm]] tables", file);

    std::vector<ConfigLayer> layers;
    std::vector<VmConfig> configs;
    for (std::size_t i = 0; i < vms->size(); ++i) {
        const std::string where = fmt::format("{}: vm[{}]", file, i);
        ConfigLayer layer = layer_from_table(*vms->get(i)->as_table(), file, fmt::format("vm[{}].", i), base_dir);
        if (!layer.broker && broker) layer.broker = broker;
        configs.push_back(finalize(layer, where));
        layers.push_back(std::move(layer));
    }

    // Names unique.
    std::map<std::string, std::size_t> by_name;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        auto [it, fresh] = by_name.emplace(configs[i].name, i);
        if (!fresh)
            throw Error("{}: VM name {} is also used by vm[{}] (give each [[vm]] its own name = \"...\")",
                        origin_of(layers[i], "name", fmt::format("{}: vm[{}]", file, i)), quote_value(configs[i].name),
                        it->second);
    }

    // One metrics file a VM: lines of two VMs in one file could not be told apart.
    std::map<std::filesystem::path, std::size_t> by_metrics;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        if (!configs[i].metrics) continue;
        auto [it, fresh] = by_metrics.emplace(configs[i].metrics->lexically_normal(), i);
        if (!fresh)
            throw Error("{}: {} is also the metrics file of vm[{}] (give each VM its own)",
                        origin_of(layers[i], "metrics", fmt::format("{}: vm[{}]", file, i)),
                        quote_value(configs[i].metrics->string()), it->second);
    }

    // MACs unique across the file (a NIC's own duplicates were caught per VM).
    std::map<net::MacAddress, std::pair<std::size_t, std::size_t>> by_mac;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        for (std::size_t n = 0; n < configs[i].nics.size(); ++n) {
            const auto& mac = *configs[i].nics[n].mac;
            auto [it, fresh] = by_mac.emplace(mac, std::pair{i, n});
            if (!fresh) {
                const auto [vi, ni] = it->second;
                throw Error("{}: MAC {} is also used by nic[{}] of VM {}",
                            origin_of(layers[i], fmt::format("nic[{}].mac", n),
                                      fmt::format("{}: vm[{}] (VM {}) nic[{}]", file, i, quote_value(configs[i].name), n)),
                            mac_text(mac), ni, quote_value(configs[vi].name));
            }
        }
    }

    // Peers must be VMs of this file.
    std::string all_names;
    for (const auto& cfg : configs) all_names += (all_names.empty() ? "" : ", ") + cfg.name;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        for (std::size_t n = 0; n < configs[i].nics.size(); ++n) {
            for (const auto& peer : configs[i].nics[n].crossover) {
                if (peer == "auto" || by_name.count(peer)) continue;
                const std::string fallback = fmt::format("{}: vm[{}]", file, i);
                std::string origin = origin_of(layers[i], fmt::format("nic[{}].crossover", n), fallback);
                if (n == 0 && layers[i].crossover) origin = origin_of(layers[i], "crossover", fallback);
                throw Error("{}: crossover peer {} is not a VM in this file (VMs: {})", origin, quote_value(peer),
                            all_names);
            }
        }
    }

    // A sound card's peer too (names only: "auto" is refused per VM).
    for (std::size_t i = 0; i < configs.size(); ++i) {
        for (std::size_t n = 0; n < configs[i].sounds.size(); ++n) {
            const auto& peer = configs[i].sounds[n].crossover;
            if (!peer || by_name.count(*peer)) continue;
            throw Error("{}: crossover peer {} is not a VM in this file (VMs: {})",
                        origin_of(layers[i], fmt::format("sound[{}].crossover", n), fmt::format("{}: vm[{}]", file, i)),
                        quote_value(*peer), all_names);
        }
    }

    // One wav output a VM: two VMs' playback in one file would garble both.
    std::map<std::filesystem::path, std::size_t> by_wav_out;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        for (std::size_t n = 0; n < configs[i].sounds.size(); ++n) {
            const auto* wav = std::get_if<sound::WavSpec>(&configs[i].sounds[n].backend);
            if (!wav) continue;
            auto [it, fresh] = by_wav_out.emplace(wav->out.lexically_normal(), i);
            if (!fresh)
                throw Error("{}: {} is also the sound output of vm[{}] (give each VM its own)",
                            origin_of(layers[i], fmt::format("sound[{}].backend", n), fmt::format("{}: vm[{}]", file, i)),
                            quote_value(wav->out.string()), it->second);
        }
    }

    // The uplink is a port of the file's broker's switch: useless unless
    // some NIC is on that switch.
    if (uplink) {
        bool used = false;
        for (const auto& cfg : configs)
            for (const auto& nic : cfg.nics) used = used || (std::holds_alternative<net::BrokerSpec>(nic.backend) && cfg.broker == broker);
        if (!used)
            throw Error("{}: no NIC has backend = \"broker\" on this file's broker (the uplink is a port of the "
                        "broker's switch)",
                        uplink_origin);
    }
    return UpConfig{std::move(configs), broker, uplink};
}

}  // namespace xover::vmm
