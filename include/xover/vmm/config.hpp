// A VM's configuration, as parsed from flags and TOML (config_parser.hpp).
// Everything here has been validated; the machine trusts it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xover/net/backend_spec.hpp"
#include "xover/net/mac_address.hpp"
#include "xover/sound/pcm_format.hpp"
#include "xover/sound/spec.hpp"

namespace xover::vmm {

enum class NicModel { E1000, VirtioNet };
enum class CrossoverMode { Copy, Window };
// The VMM's seccomp filter (vmm/seccomp.hpp): a syscall outside its
// allow-list kills the process, is only logged, or no filter is loaded.
enum class SeccompMode { Kill, Log, Off };
// --stats at exit: nothing, the counters that are not 0, or every counter.
enum class StatsMode { Off, NonZero, All };

// The names flags, files, logs, `xover status` and the broker protocol use
// ("e1000", "virtio-net"; "copy", "window"). parse_* gives nullopt for any
// other text.
std::string_view to_string(NicModel model);
std::optional<NicModel> parse_nic_model(std::string_view text);
std::string_view to_string(CrossoverMode mode);
std::optional<CrossoverMode> parse_crossover_mode(std::string_view text);
std::string_view to_string(SeccompMode mode);
std::optional<SeccompMode> parse_seccomp_mode(std::string_view text);
// As --stats takes it: "true" (what a bare --stats gives), "false", "all".
std::string_view to_string(StatsMode mode);
std::optional<StatsMode> parse_stats_mode(std::string_view text);

struct NicConfig {
    NicModel model = NicModel::E1000;
    std::optional<net::MacAddress> mac;        // default: derived from VM name and index
    net::BackendSpec backend = net::NoneSpec{};
    std::vector<std::string> crossover;        // peer VM names, or {"auto"}
    CrossoverMode crossover_mode = CrossoverMode::Copy;
    // virtio-net: whether queue notifies end in the kernel (a KVM
    // ioeventfd, served by the I/O thread) or stay MMIO exits that the
    // vCPU thread serves itself (QEMU's ioeventfd=off). Unset means
    // uses_ioeventfd()'s choice.
    std::optional<bool> ioeventfd;
};

// Whether `nic`'s queue notifies go through an ioeventfd: as configured,
// else on for a NIC with only a backend and off for a crossover NIC. A
// crossover frame move is a copy into the peer's ring with no syscall, so
// the vCPU thread that takes the notify's exit is the cheapest thread to do
// it; an ioeventfd hands it to the I/O thread, a wake-up per batch on a
// core that a vCPU holds (bench/RESULTS.md: 2x the frames/s, half the round
// trip). Backend sends are syscalls and stay off the vCPU.
bool uses_ioeventfd(const NicConfig& nic);

enum class SoundModel { VirtioSnd };
std::string_view to_string(SoundModel model);  // "virtio-snd"
std::optional<SoundModel> parse_sound_model(std::string_view text);

// One sound card (`--sound virtio-snd[,backend=SPEC][,crossover=PEER]`, a
// `[[sound]]` table): a headphone output and a microphone input. With a
// crossover, the output is wired to the peer's input and the peer's output
// to this input, when the peer asks for this VM too.
struct SoundConfig {
    SoundModel model = SoundModel::VirtioSnd;
    sound::BackendSpec backend = sound::NoneSpec{};
    std::optional<std::string> crossover;  // the peer VM's name
    // The one format the card offers its guest (rate=, channels=): both
    // ends of a crossover must agree on it, or the broker refuses the link.
    // Unset: every format the device supports, and for a crossover card
    // kDefaultCrossoverFormat.
    std::optional<sound::PcmFormat> format;
};
inline constexpr sound::PcmFormat kDefaultCrossoverFormat{.channels = 2, .rate = 48000};

struct VmConfig {
    std::string name = "vm";
    std::filesystem::path kernel;
    std::string cmdline;
    std::optional<std::filesystem::path> initrd;
    std::uint64_t memory_bytes = 128ull << 20;
    unsigned cpus = 1;
    std::string console = "stdout";            // "stdout" | "file:PATH" | "none"
    StatsMode stats = StatsMode::Off;
    // --metrics: a JSON object a line, every metrics_interval and at exit
    // (vmm/metrics_writer.hpp). Checked writable by validation.
    std::optional<std::filesystem::path> metrics;
    std::chrono::seconds metrics_interval{60};
    // --api-socket: the control API's socket; "" = vm.NAME.api.sock next to
    // the broker socket, "none" = no API.
    std::string api_socket;
    std::string log_level = "warn";
    std::string cpu_template;                  // "" | "baseline"
    SeccompMode seccomp = SeccompMode::Kill;
    std::optional<std::filesystem::path> broker;
    std::vector<NicConfig> nics;
    std::vector<SoundConfig> sounds;
    // Set only for a VM `xover up` started (kConsentGroupEnv): the VMs of
    // one file may link when one names the other (crossover/link_planner.hpp).
    std::string consent_group;
};

// Whether the VM talks to a crossover broker: a crossover NIC or sound
// card, or a NIC on the broker's switch (backend=broker).
bool uses_broker(const VmConfig& vm);

// How `xover up` hands its run's consent group to the VMs it starts: an
// environment variable, readable only by the same uid (as is everything
// the group protects).
inline constexpr const char* kConsentGroupEnv = "XOVER_CONSENT_GROUP";

// An `xover up` file: its VMs and the settings of the broker it starts.
struct UpConfig {
    std::vector<VmConfig> vms;
    std::optional<std::filesystem::path> broker;  // top-level broker = (also each VM's default)
    std::optional<std::string> uplink;            // top-level uplink = "tap:IFNAME"
};

}  // namespace xover::vmm
