// Layering (flags over file) and the checks that need the final values:
// kernel/initrd readable, the metrics file writable, crossover attached to
// a NIC, default MACs, duplicate MACs, sound cards' files and peers.
#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm::config_detail {

namespace {

template <typename T>
void overlay(std::optional<T>& base, const std::optional<T>& over) {
    if (over) base = over;
}

}  // namespace

std::string origin_of(const ConfigLayer& layer, const std::string& key, const std::string& where) {
    auto it = layer.origin.find(key);
    if (it != layer.origin.end()) return it->second;
    return fmt::format("{}: key \"{}\"", where, key);
}

ConfigLayer merge(ConfigLayer base, const ConfigLayer& over) {
    overlay(base.name, over.name);
    overlay(base.cmdline, over.cmdline);
    overlay(base.console, over.console);
    overlay(base.log_level, over.log_level);
    overlay(base.cpu_template, over.cpu_template);
    overlay(base.seccomp, over.seccomp);
    overlay(base.kernel, over.kernel);
    overlay(base.initrd, over.initrd);
    overlay(base.broker, over.broker);
    overlay(base.memory_bytes, over.memory_bytes);
    overlay(base.cpus, over.cpus);
    overlay(base.stats, over.stats);
    overlay(base.metrics, over.metrics);
    overlay(base.metrics_interval, over.metrics_interval);
    overlay(base.api_socket, over.api_socket);
    overlay(base.crossover, over.crossover);
    if (over.nics) {
        // A NIC list replaces the other list whole, origins included.
        base.nics = over.nics;
        std::erase_if(base.origin, [](const auto& kv) { return kv.first.rfind("nic", 0) == 0; });
    }
    if (over.sounds) {
        // As the NICs: a --sound replaces the file's [[sound]] list.
        base.sounds = over.sounds;
        std::erase_if(base.origin, [](const auto& kv) { return kv.first.rfind("sound", 0) == 0; });
    }
    for (const auto& [key, origin] : over.origin) base.origin[key] = origin;
    return base;
}

VmConfig finalize(const ConfigLayer& layer, const std::string& where) {
    VmConfig cfg;
    if (layer.name) cfg.name = *layer.name;
    if (!layer.kernel || layer.kernel->empty())
        throw Error("{}: no kernel given (use --kernel PATH or kernel = \"PATH\")", where);
    cfg.kernel = *layer.kernel;
    check_readable_file(cfg.kernel, origin_of(layer, "kernel", where));
    if (layer.initrd) {
        cfg.initrd = *layer.initrd;
        check_readable_file(*cfg.initrd, origin_of(layer, "initrd", where));
    }
    if (layer.cmdline) cfg.cmdline = *layer.cmdline;
    if (layer.memory_bytes) cfg.memory_bytes = *layer.memory_bytes;
    if (layer.cpus) cfg.cpus = *layer.cpus;
    if (layer.console) cfg.console = *layer.console;
    if (layer.stats) cfg.stats = *layer.stats;
    if (layer.metrics) {
        cfg.metrics = *layer.metrics;
        check_writable_file(*cfg.metrics, origin_of(layer, "metrics", where));
    }
    if (layer.metrics_interval) {
        if (!layer.metrics)
            throw Error("{}: there is no metrics file to write (use --metrics PATH or metrics = \"PATH\")",
                        origin_of(layer, "metrics_interval", where));
        cfg.metrics_interval = *layer.metrics_interval;
    }
    if (layer.api_socket) cfg.api_socket = *layer.api_socket;
    if (layer.log_level) cfg.log_level = *layer.log_level;
    if (layer.cpu_template) cfg.cpu_template = *layer.cpu_template;
    if (layer.seccomp) cfg.seccomp = *layer.seccomp;
    if (layer.broker) cfg.broker = *layer.broker;
    if (layer.nics) cfg.nics = *layer.nics;
    if (layer.sounds) cfg.sounds = *layer.sounds;

    // Top-level crossover belongs to the first NIC; a VM asking for a
    // crossover without any NIC gets a default one.
    std::string nic0_crossover_origin = origin_of(layer, "nic[0].crossover", where);
    if (layer.crossover) {
        if (cfg.nics.empty()) cfg.nics.emplace_back();
        cfg.nics[0].crossover = *layer.crossover;
        nic0_crossover_origin = origin_of(layer, "crossover", where);
    }

    for (std::size_t i = 0; i < cfg.nics.size(); ++i) {
        auto& nic = cfg.nics[i];
        const std::string crossover_origin =
            i == 0 ? nic0_crossover_origin : origin_of(layer, fmt::format("nic[{}].crossover", i), where);
        for (const auto& peer : nic.crossover)
            if (peer == cfg.name)
                throw Error("{}: VM {} cannot be its own crossover peer", crossover_origin, quote_value(peer));
        if (!nic.mac) nic.mac = default_mac(cfg.name, i);
        for (std::size_t j = 0; j < i; ++j) {
            if (cfg.nics[j].mac == nic.mac) {
                const bool explicit_mac = layer.origin.count(fmt::format("nic[{}].mac", i)) > 0;
                throw Error("{}: MAC {} is already used by nic[{}] of VM {}{}",
                            origin_of(layer, fmt::format("nic[{}].mac", i), where), mac_text(*nic.mac), j,
                            quote_value(cfg.name), explicit_mac ? "" : " (default MAC collision: set mac explicitly)");
            }
        }
    }

    for (std::size_t i = 0; i < cfg.sounds.size(); ++i) {
        const auto& sound = cfg.sounds[i];
        check_sound_count(i, origin_of(layer, fmt::format("sound[{}]", i), where));
        if (sound.crossover && *sound.crossover == cfg.name)
            throw Error("{}: VM {} cannot be its own crossover peer",
                        origin_of(layer, fmt::format("sound[{}].crossover", i), where), quote_value(cfg.name));
        check_sound_files(sound, origin_of(layer, fmt::format("sound[{}].backend", i), where));
    }
    return cfg;
}

}  // namespace xover::vmm::config_detail
