// Private to src/vmm/config_*.cpp: one source of settings (a TOML table or
// the flags) as a "layer" of optional values, each remembering where it came
// from so a later error can name the file, line and key (or the flag).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xover/vmm/toml.hpp"

#include "xover/vmm/config.hpp"
#include "xover/vmm/config_parser.hpp"

namespace xover::vmm::config_detail {

// Values already checked one by one (syntax, ranges); what needs more than
// one value (files readable after overrides, MACs, peers) is checked when the
// layers are merged.
struct ConfigLayer {
    std::optional<std::string> name, cmdline, console, log_level, cpu_template, api_socket;
    std::optional<std::filesystem::path> kernel, initrd, broker, metrics;
    std::optional<std::uint64_t> memory_bytes;
    std::optional<unsigned> cpus;
    std::optional<StatsMode> stats;
    std::optional<std::chrono::seconds> metrics_interval;
    std::optional<SeccompMode> seccomp;
    std::optional<std::vector<NicConfig>> nics;
    std::optional<std::vector<std::string>> crossover;
    std::optional<std::vector<SoundConfig>> sounds;
    // Field name ("mem", "nic[1]", "nic[1].mac", "sound[0].backend", ...) -> message prefix
    // ("vm.toml:3: key \"mem\"" or "--mem").
    std::map<std::string, std::string> origin;
};

// The same TOML in ASCII, for toml++ 3.3, which mishandles non-ASCII
// characters (config_ascii.cpp). Throws (naming `file`, line and column) on
// a non-ASCII character outside a string or comment, which TOML forbids, on
// one escaped by a backslash, and on bytes that are not UTF-8.
std::string asciify_toml(std::string_view text, const std::string& file);

// Flags layered over a file: every field `over` sets wins.
ConfigLayer merge(ConfigLayer base, const ConfigLayer& over);

// Defaults + cross-value checks -> the final config. `where` names the
// source of defaults ("--kernel" is missing, etc.).
VmConfig finalize(const ConfigLayer& layer, const std::string& where);

// A TOML table of VM keys -> layer. `file` is the label used in messages,
// `key_prefix` is prepended to key names ("vm[1]."), `base_dir` anchors
// relative paths.
ConfigLayer layer_from_table(const toml::table& table, const std::string& file, const std::string& key_prefix,
                             const std::filesystem::path& base_dir);

// The flags -> layer (file not read).
ConfigLayer layer_from_flags(const RunOptions& opts);

// The recorded origin of `key`, else `<where>: key "<key>"`.
std::string origin_of(const ConfigLayer& layer, const std::string& key, const std::string& where);

// "vm.toml:12: key \"mem\"" (line omitted when unknown).
std::string key_origin(const std::string& file, const toml::node& node, const std::string& key);

// Single-value checks, each throwing `<origin>: <problem>` on bad input.
std::string check_name(const std::string& value, const std::string& origin);
std::uint64_t check_memory(std::uint64_t bytes, const std::string& shown, const std::string& origin);
unsigned check_cpus(std::int64_t value, const std::string& origin);
std::string check_console(const std::string& value, const std::string& origin);
std::string check_log_level(const std::string& value, const std::string& origin);
std::string check_cpu_template(const std::string& value, const std::string& origin);
SeccompMode check_seccomp(const std::string& value, const std::string& origin);
std::chrono::seconds check_metrics_interval(std::int64_t seconds, const std::string& origin);
// --api-socket: "none", or a path that fits a Unix socket address.
std::string check_api_socket(const std::string& value, const std::string& origin);
NicModel check_model(const std::string& value, const std::string& origin);
CrossoverMode check_mode(const std::string& value, const std::string& origin);
bool check_on_off(const std::string& value, const std::string& origin);
// Checks across a NIC's keys (whatever order they came in).
void check_nic(const NicConfig& nic, const std::string& where);
// Syntax only: names are resolved and sockets opened when the NIC is built.
net::BackendSpec check_backend(const std::string& value, const std::string& origin);
// An `xover up` file's uplink: "tap:IFNAME" (syntax only; the broker opens it).
std::string check_uplink(const std::string& value, const std::string& origin);
// Peer names: each a VM name, or exactly {"auto"}; duplicates dropped.
std::vector<std::string> check_crossover(const std::vector<std::string>& names, const std::string& origin);
// Sound cards: the model name; a backend spec's syntax (its files are
// checked by finalize, opened when the device is built); the one crossover
// peer (a VM name, not "auto", not a list).
inline constexpr const char* kSoundKeys = "model, backend, crossover, rate, channels";
SoundModel check_sound_model(const std::string& value, const std::string& origin);
// rate= and channels=: the card's one format (SoundConfig::format).
unsigned check_sound_rate(std::int64_t value, const std::string& origin);
unsigned check_sound_channels(std::int64_t value, const std::string& origin);
// What a whole card must be, once its keys are read: a crossover card's
// output and input are the cable, so it takes no backend; its format
// defaults to kDefaultCrossoverFormat; a rate or a channel count alone
// takes the other from kDefaultCrossoverFormat.
void finish_sound(SoundConfig& sound, std::optional<unsigned> rate, std::optional<unsigned> channels,
                  const std::string& origin);
sound::BackendSpec check_sound_backend(const std::string& value, const std::string& origin);
std::string check_sound_peer(const std::string& value, const std::string& origin);
// Throws `<origin>: a second sound card (a VM has at most one)` when a card
// numbered `index` is one too many.
void check_sound_count(std::size_t index, const std::string& origin);
// A wav: backend's relative paths taken relative to `base_dir` (anchor()).
sound::BackendSpec anchor_sound_backend(sound::BackendSpec spec, const std::filesystem::path& base_dir);
// The files of a sound card's backend: a wav: output this process may
// write (check_writable_file), an input it may read, not one file for both.
// Throws `<origin>: ...`.
void check_sound_files(const SoundConfig& sound, const std::string& origin);

// A --nic or --sound spec, "[MODEL,]key=value,...", split at every comma.
// A bare first item is the model: `model` gets it. Every key=value item goes
// to `key_value` with its key, its value, the whole item and its origin
// ("<where>: <key>"); it returns false for a key it does not know. A later
// bare item (or an empty one) goes to `bare`, which returns true if it takes
// it (a backend's own option, split off by the comma). Throws
// `<where>: "<item>" is not key=value (keys: <keys>)` for a bare item nobody
// takes, `<where>: unknown key "<key>" (keys: <keys>)` for an unknown key.
void for_each_spec_item(
    std::string_view spec, const std::string& where, std::string_view keys,
    const std::function<void(const std::string& model)>& model,
    const std::function<bool(const std::string& key, const std::string& value, std::string_view item,
                             const std::string& origin)>& key_value,
    const std::function<bool(std::string_view item)>& bare = {});

// Splits "a+b" / "a,b" into names.
std::vector<std::string> split_peers(std::string_view text);

// Relative `p` is taken relative to `base_dir` (if non-empty).
std::filesystem::path anchor(const std::filesystem::path& p, const std::filesystem::path& base_dir);

// Throws `<origin>: "<path>" cannot be read: <reason>` unless `path` is a
// readable regular file.
void check_readable_file(const std::filesystem::path& path, const std::string& origin);
// Throws `<origin>: "<path>" cannot be written: <reason>` unless `path` is
// a file this process may append to, or may create in its directory.
void check_writable_file(const std::filesystem::path& path, const std::string& origin);

// "52:54:00:12:34:56" (net::MacAddress::to_string lives in xover_net).
std::string mac_text(const net::MacAddress& mac);

// `"value"` quoted for messages (escapes quotes and control characters).
std::string quote_value(std::string_view text);

}  // namespace xover::vmm::config_detail
