// A VM's configuration, as parsed from flags and TOML (config_parser.hpp).
// Everything here has been validated; the machine trusts it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xover/net/backend_spec.hpp"
#include "xover/net/mac_address.hpp"

namespace xover::vmm {

enum class NicModel { E1000, VirtioNet };
enum class CrossoverMode { Copy, Window };

// The names flags, files, logs, `xover status` and the broker protocol use
// ("e1000", "virtio-net"; "copy", "window"). parse_* gives nullopt for any
// other text.
std::string_view to_string(NicModel model);
std::optional<NicModel> parse_nic_model(std::string_view text);
std::string_view to_string(CrossoverMode mode);
std::optional<CrossoverMode> parse_crossover_mode(std::string_view text);

struct NicConfig {
    NicModel model = NicModel::E1000;
    std::optional<net::MacAddress> mac;        // default: derived from VM name and index
    net::BackendSpec backend = net::NoneSpec{};
    std::vector<std::string> crossover;        // peer VM names, or {"auto"}
    CrossoverMode crossover_mode = CrossoverMode::Copy;
    // virtio-net: queue notifies end in the kernel (a KVM ioeventfd) and the
    // I/O thread serves them; false: the vCPU thread serves them in its MMIO
    // exit (QEMU's ioeventfd=off). Off wins when every host core is busy
    // running vCPUs, e.g. polling guests: the I/O thread then waits for a core.
    bool ioeventfd = true;
};

struct VmConfig {
    std::string name = "vm";
    std::filesystem::path kernel;
    std::string cmdline;
    std::optional<std::filesystem::path> initrd;
    std::uint64_t memory_bytes = 128ull << 20;
    unsigned cpus = 1;
    std::string console = "stdout";            // "stdout" | "file:PATH" | "none"
    bool stats = false;
    std::string log_level = "warn";
    std::string cpu_template;                  // "" | "baseline"
    std::optional<std::filesystem::path> broker;
    std::vector<NicConfig> nics;
};

// An `xover up` file: its VMs and the settings of the broker it starts.
struct UpConfig {
    std::vector<VmConfig> vms;
    std::optional<std::filesystem::path> broker;  // top-level broker = (also each VM's default)
    std::optional<std::string> uplink;            // top-level uplink = "tap:IFNAME"
};

}  // namespace xover::vmm
