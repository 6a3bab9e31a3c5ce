// The `xover run` flags as a ConfigLayer; messages name the flag.
#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm::config_detail {

ConfigLayer layer_from_flags(const RunOptions& opts) {
    ConfigLayer layer;
    auto set = [&](auto& field, const auto& value, const std::string& key, const std::string& flag) {
        field = value;
        layer.origin[key] = flag;
    };
    if (opts.name) set(layer.name, check_name(*opts.name, "--name"), "name", "--name");
    if (opts.kernel) set(layer.kernel, std::filesystem::path(*opts.kernel), "kernel", "--kernel");
    if (opts.cmdline) set(layer.cmdline, *opts.cmdline, "cmdline", "--cmdline");
    if (opts.initrd) set(layer.initrd, std::filesystem::path(*opts.initrd), "initrd", "--initrd");
    if (opts.mem) {
        std::uint64_t bytes = 0;
        try {
            bytes = parse_size(*opts.mem);
        } catch (const Error& e) {
            throw Error("--mem: {}", e.what());
        }
        set(layer.memory_bytes, check_memory(bytes, *opts.mem, "--mem"), "mem", "--mem");
    }
    if (opts.cpus) set(layer.cpus, check_cpus(*opts.cpus, "--cpus"), "cpus", "--cpus");
    if (opts.console) set(layer.console, check_console(*opts.console, "--console"), "console", "--console");
    if (opts.stats) set(layer.stats, parse_stats_flag(*opts.stats), "stats", "--stats");
    if (opts.metrics) set(layer.metrics, std::filesystem::path(*opts.metrics), "metrics", "--metrics");
    if (opts.metrics_interval)
        set(layer.metrics_interval, check_metrics_interval(*opts.metrics_interval, "--metrics-interval"),
            "metrics_interval", "--metrics-interval");
    if (opts.log_level)
        set(layer.log_level, check_log_level(*opts.log_level, "--log-level"), "log_level", "--log-level");
    if (opts.cpu_template)
        set(layer.cpu_template, check_cpu_template(*opts.cpu_template, "--cpu-template"), "cpu_template",
            "--cpu-template");
    if (opts.seccomp) set(layer.seccomp, check_seccomp(*opts.seccomp, "--seccomp"), "seccomp", "--seccomp");
    if (opts.api_socket) set(layer.api_socket, check_api_socket(*opts.api_socket, "--api-socket"), "api_socket", "--api-socket");
    if (opts.broker) {
        if (opts.broker->empty()) throw Error("--broker: the broker socket path is empty");
        set(layer.broker, std::filesystem::path(*opts.broker), "broker", "--broker");
    }
    if (!opts.nics.empty()) {
        std::vector<NicConfig> nics;
        for (std::size_t i = 0; i < opts.nics.size(); ++i) {
            const std::string origin = fmt::format("--nic {}", quote_value(opts.nics[i]));
            nics.push_back(parse_nic_spec(opts.nics[i], origin));
            for (const char* sub : {"", ".mac", ".crossover"})
                layer.origin[fmt::format("nic[{}]{}", i, sub)] = origin;
        }
        layer.nics = std::move(nics);
        layer.origin["nic"] = "--nic";
    }
    if (!opts.sounds.empty()) {
        std::vector<SoundConfig> sounds;
        for (std::size_t i = 0; i < opts.sounds.size(); ++i) {
            const std::string origin = fmt::format("--sound {}", quote_value(opts.sounds[i]));
            check_sound_count(i, origin);
            sounds.push_back(parse_sound_spec(opts.sounds[i], origin));
            for (const char* sub : {"", ".model", ".backend", ".crossover"})
                layer.origin[fmt::format("sound[{}]{}", i, sub)] = origin;
        }
        layer.sounds = std::move(sounds);
        layer.origin["sound"] = "--sound";
    }
    if (!opts.crossover.empty()) {
        std::vector<std::string> names;
        for (const auto& item : opts.crossover)
            for (auto& name : split_peers(item)) names.push_back(std::move(name));
        set(layer.crossover, check_crossover(names, "--crossover"), "crossover", "--crossover");
    }
    return layer;
}

}  // namespace xover::vmm::config_detail
