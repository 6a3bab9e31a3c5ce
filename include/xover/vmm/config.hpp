// A VM's configuration, as parsed from flags and TOML (config_parser.hpp).
// Everything here has been validated; the machine trusts it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "xover/net/mac_address.hpp"

namespace xover::vmm {

struct NicConfig {
    std::string model = "e1000";               // "e1000" | "virtio-net"
    std::optional<net::MacAddress> mac;        // default: derived from VM name and index
    std::string backend = "none";              // see net::make_backend
    std::vector<std::string> crossover;        // peer VM names, or {"auto"}
    std::string crossover_mode = "copy";       // "copy" | "window"
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
