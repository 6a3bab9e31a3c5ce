// Turns command-line flags and TOML files into validated VmConfigs.
//
// Sources and precedence: `xover run` reads the TOML file named by --config
// (if any), then every flag that was given replaces the file's value.
// A --nic flag replaces the file's whole [[nic]] list; --crossover applies to
// the first NIC (creating a default e1000 NIC with backend "none" if there
// is none). A --sound flag replaces the file's [[sound]] list the same way.
// Relative paths in a file (kernel, initrd, console file:, broker, metrics,
// a sound backend's wav: files) are relative to the file's directory; on
// the command line, to the cwd.
//
// TOML keys mirror the flags:
//   name, kernel, cmdline, initrd, mem ("128M" or integer bytes), cpus,
//   console ("stdout" | "none" | "file:PATH"), stats (true: the counters
//   that are not 0 | "all" | false), metrics (a file the VM appends a JSON
//   line to), metrics_interval (seconds, 1 to 86400; default 60), log_level,
//   cpu_template ("host" (= "") | "baseline"), seccomp ("kill" | "log" |
//   "off"), broker (socket path),
//   crossover (array of VM names, or "auto": applies to the first NIC),
//   [[nic]] tables: model ("e1000" | "virtio-net"), mac, backend,
//               crossover (array of names or "auto"), mode ("copy" | "window").
//   [[sound]] table (at most one): model ("virtio-snd"), backend ("none" |
//               "wav:OUT.wav[,in=IN.wav]"), crossover (one peer VM's name).
// `xover up` files hold [[vm]] tables with the same keys, plus optional
// top-level keys for the broker `xover up` starts:
//   broker = "PATH"      used by every VM that does not set its own;
//   uplink = "tap:NAME"  that broker's switch uplink, an existing tap
//                        (ip tuntap add NAME mode tap): some NIC must have
//                        backend = "broker" on that broker.
//
// Every error is one line naming where the value came from, the key and the
// value, e.g.
//   vm.toml:3: key "mem": "12Q" is not a size (use 64M, 1G)
//   --mem: "12Q" is not a size (use 64M, 1G)
//
// Default MAC (a NIC without mac=): 52:54:00:XX:YY:ZZ where XX:YY:ZZ are the
// low 24 bits of the 32-bit FNV-1a hash of "<vm name>/<nic index>" — stable
// across runs, different per VM and NIC (a rare collision is reported as a
// duplicate MAC; set mac= explicitly then).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xover/vmm/toml.hpp"

#include "xover/net/mac_address.hpp"
#include "xover/vmm/config.hpp"

namespace xover::vmm {

// Every `xover run` flag; unset optionals / empty vectors mean "not given".
struct RunOptions {
    std::optional<std::filesystem::path> config;   // --config FILE.toml
    std::optional<std::string> name;               // --name
    std::optional<std::string> kernel;             // --kernel
    std::optional<std::string> cmdline;            // --cmdline
    std::optional<std::string> initrd;             // --initrd
    std::optional<std::string> mem;                // --mem 128M
    std::optional<std::int64_t> cpus;              // --cpus (signed so "-1" gets our message)
    std::optional<std::string> console;            // --console stdout|none|file:PATH
    std::optional<std::string> stats;              // --stats ("true"), --stats=all, --stats=false
    std::optional<std::string> metrics;            // --metrics PATH
    std::optional<std::int64_t> metrics_interval;  // --metrics-interval SECONDS
    std::optional<std::string> api_socket;         // --api-socket PATH|none
    std::optional<std::string> log_level;          // --log-level
    std::optional<std::string> cpu_template;       // --cpu-template
    std::optional<std::string> seccomp;            // --seccomp kill|log|off
    std::optional<std::string> broker;             // --broker PATH
    std::vector<std::string> nics;                 // --nic SPEC (repeatable)
    std::vector<std::string> crossover;            // --crossover NAME|auto (repeatable; "a+b" also splits)
    std::vector<std::string> sounds;               // --sound SPEC (a second one is refused: one card a VM)
};

// Reads opts.config (if set), applies the flags on top, validates.
VmConfig resolve_run_config(const RunOptions& opts);

// One VM from a TOML table (a whole `xover run` file, or one [[vm]] of an up
// file). `where` prefixes messages ("vm.toml", "up.toml vm[2]");
// `base_dir` anchors relative paths. Validates the result.
VmConfig parse_vm_table(const toml::table& table, const std::string& where,
                        const std::filesystem::path& base_dir = {});

// `xover up FILE.toml`: every [[vm]]; names, MACs, metrics files and sound
// cards' wav outputs unique across the file, crossover peers (of NICs and
// sound cards) name a VM of the file (or are "auto", for NICs).
std::vector<VmConfig> load_up_file(const std::filesystem::path& path);
// The same, with the file's broker settings.
UpConfig read_up_file(const std::filesystem::path& path);

// "e1000,mac=52:54:00:12:34:56,backend=udp:5000@127.0.0.1:5001,crossover=vm-b+vm-c,mode=window".
// The first item may be a bare model name; all keys optional. Messages
// start with `where`. The MAC stays unset (defaulted by validation).
NicConfig parse_nic_spec(std::string_view spec, const std::string& where = "--nic");

// "virtio-snd,backend=wav:out.wav,in=in.wav,crossover=vm-b". The first item
// may be a bare model name; keys model, backend, crossover, all optional. An
// item right after backend= (or after its continuation) whose key is none of
// those continues the backend spec (the comma of "wav:OUT,in=IN" split it).
// Messages start with `where`. Paths are kept as given; whether the files
// can be written and read is checked by validation.
SoundConfig parse_sound_spec(std::string_view spec, const std::string& where = "--sound");

// How many sound cards a VM may have.
inline constexpr std::size_t kMaxSounds = 1;

// "64M", "1G", "512K", "2T", "4096" (bytes); suffixes are binary (K = 1024),
// case-insensitive, optional trailing "B"/"iB". Throws xover::Error
// `"12Q" is not a size (use 64M, 1G)` (callers prefix the source).
std::uint64_t parse_size(std::string_view text);

// MAC text -> address (no dependency on xover_net's parser, which links
// after this library). Throws `"zz" is not a MAC address (use 52:54:00:12:34:56)`.
net::MacAddress parse_mac(std::string_view text);

// The default MAC of NIC `index` of VM `vm_name` (see top of file).
net::MacAddress default_mac(std::string_view vm_name, std::size_t index);

// `value` if it is a valid VM name (xover/vm_name.hpp, and not "auto");
// else throws xover::Error prefixed with `origin` ("--name").
std::string check_vm_name(const std::string& value, const std::string& origin);

// Checks the whole config (ranges, files readable, NICs, sound cards) and fills default
// MACs. `where` names the source for messages. Called by all of the above;
// exposed for callers that build a VmConfig by hand.
void validate_vm_config(VmConfig& config, const std::string& where);

// The value of a --stats flag (run and up): "true" (a bare --stats),
// "false" or "all". Throws `<flag>: "x" is not ...`.
StatsMode parse_stats_flag(const std::string& value, const std::string& flag = "--stats");

// Limits enforced by validation.
inline constexpr std::int64_t kMaxMetricsInterval = 86400;  // seconds: a line a day
inline constexpr std::uint64_t kMinMemory = 16ull << 20;
inline constexpr std::uint64_t kMaxMemory = 64ull << 30;
inline constexpr unsigned kMaxCpus = 64;

}  // namespace xover::vmm
