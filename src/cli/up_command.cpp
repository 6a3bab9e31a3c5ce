// `xover up FILE.toml`: the launcher. Starts the crossover broker (when a VM
// uses the crossover and none is listening), then every [[vm]] of the file
// as its own `xover run` process; prefixes each line a VM prints with its
// name, forwards SIGINT/SIGTERM to the VMs, and returns when all have
// exited — non-zero if any failed. It ends with a summary of what the VMs
// reported (nettest RESULT lines, sndtest verdicts, crossover, copy and
// sound counters).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <initializer_list>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "xover/api/link_watch.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/crossover/switch_uplink.hpp"
#include "xover/error.hpp"
#include "xover/vmm/config_parser.hpp"

namespace xover::cli {

namespace {

volatile std::sig_atomic_t g_forward_signal = 0;

// One child VM and the two pipes carrying its console and its log/stats.
struct Child {
    std::string name;
    pid_t pid = -1;
    int out = -1;  // guest console (stdout)
    int err = -1;  // xover logs and --stats (stderr)
    std::string partial_out, partial_err;
    int status = -1;
    std::vector<std::string> summary;  // lines worth repeating at the end
};

// What the summary keeps from a VM's output: its result lines (nettest's
// RESULT, sndtest's verdict), the VM's exit count, the TSC rate a nettest
// guest reports, the NIC counters that say what crossed and what was
// copied, and a sound card's: what it played and captured, what its cable
// carried.
bool worth_summarizing(const std::string& line) {
    auto starts = [&](const char* prefix) { return line.rfind(prefix, 0) == 0; };
    return starts("RESULT") || starts("sndtest: PASS") || starts("sndtest: FAIL") || starts("stats: vm ") ||
           line.find("tsc_hz=") != std::string::npos ||
           ((starts("stats: nic") || starts("stats: snd")) && line.find(" intx_gsi=") != std::string::npos);
}

// The value of `key=` in a "k=v k=v" line, or empty.
std::string field(const std::string& line, const std::string& key) {
    std::size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return {};
    at += key.size() + 2;
    return line.substr(at, line.find(' ', at) - at);
}

// A device's line of the summary: its stats group, then those of `keys` it has.
std::string device_summary(const std::string& line, std::initializer_list<const char*> keys) {
    std::string text = line.substr(7, line.find(' ', 7) - 7) + ":";
    for (const char* key : keys)
        if (auto v = field(line, key); !v.empty()) text += fmt::format(" {}={}", key, v);
    return text;
}

// Condenses a VM's kept lines into the few numbers a reader wants.
std::vector<std::string> summarize(const std::vector<std::string>& lines) {
    std::vector<std::string> out;
    double tsc_hz = 0;
    for (const auto& line : lines)
        if (auto hz = field(" " + line, "tsc_hz"); !hz.empty()) tsc_hz = std::stod(hz);
    for (const auto& line : lines) {
        if (line.rfind("RESULT", 0) == 0) {
            std::string text = line;
            auto frames = field(line, "frames"), bytes = field(line, "bytes"), cycles = field(line, "cycles");
            if (tsc_hz > 0 && !frames.empty() && !bytes.empty() && !cycles.empty() && std::stod(cycles) > 0) {
                double seconds = std::stod(cycles) / tsc_hz;
                text += fmt::format("  => {:.0f} frames/s, {:.1f} Mbit/s", std::stod(frames) / seconds,
                                    std::stod(bytes) * 8 / seconds / 1e6);
            }
            out.push_back(text);
        } else if (line.rfind("stats: vm ", 0) == 0) {
            out.push_back("VM exits: " + field(line, "exits"));
        } else if (line.rfind("stats: nic", 0) == 0) {
            out.push_back(device_summary(line, {"tx_frames", "rx_frames", "xover_tx_frames", "xover_tx_bytes",
                                                "xover_rx_frames", "xover_bytes_copied", "xover_tx_backend_frames",
                                                "xover_links_made"}));
        } else if (line.rfind("stats: snd", 0) == 0) {
            out.push_back(device_summary(line, {"playback_bytes", "capture_bytes", "underruns", "overruns",
                                                "cable_sent_bytes", "cable_received_bytes", "cable_dropped_bytes",
                                                "cable_silence_bytes", "links_up", "links_refused"}));
        } else {
            out.push_back(line);  // sndtest's verdict
        }
    }
    return out;
}

// Emits complete lines from `buffer` with the VM's name in front.
void flush_lines(Child& child, std::string& buffer, std::FILE* to, bool final) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = buffer.substr(start, nl - start);
        fmt::print(to, "[{}] {}\n", child.name, line);
        if (worth_summarizing(line)) child.summary.push_back(line);
    }
    buffer.erase(0, start);
    if (final && !buffer.empty()) {
        fmt::print(to, "[{}] {}\n", child.name, buffer);
        buffer.clear();
    }
    std::fflush(to);
}

// 128 random bits as hex: this run's consent group.
std::string random_group() {
    std::array<std::uint8_t, 16> bytes{};
    if (::getrandom(bytes.data(), bytes.size(), 0) != ssize_t(bytes.size())) throw system_error("getrandom");
    std::string hex;
    for (auto b : bytes) hex += fmt::format("{:02x}", b);
    return hex;
}

Child spawn_vm(const std::filesystem::path& file, const vmm::VmConfig& vm, vmm::StatsMode stats,
               const vmm::JailFlags& jail) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) throw system_error("pipe for a VM's console");
    std::vector<std::string> args = {"xover", "run", "--from-up", file.string(), "--vm", vm.name};
    if (stats != vmm::StatsMode::Off) args.push_back(fmt::format("--stats={}", vmm::to_string(stats)));
    for (auto& a : jail_flag_args(jail)) args.push_back(std::move(a));
    pid_t pid = ::fork();
    if (pid < 0) throw system_error("fork for VM " + vm.name);
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(err[1], STDERR_FILENO);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv("/proc/self/exe", argv.data());
        std::perror("xover up: exec");
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    Child child;
    child.name = vm.name;
    child.pid = pid;
    child.out = out[0];
    child.err = err[0];
    return child;
}

// The file's broker with its switch uplink. The tap is tried here first, so
// that a missing tap or a missing permission is one line before anything
// starts (the broker itself runs detached). A broker already listening
// there must have the same uplink: it would not get one now.
void start_uplink_broker(const std::filesystem::path& file, const std::filesystem::path& path,
                         const std::string& uplink, const vmm::JailFlags& jail) {
    if (crossover::connect_broker(path)) {
        std::string running = crossover::running_uplink(path);
        if (running != uplink)
            throw Error("{}: uplink \"{}\": the broker already running on {} has {} (stop it, or set another broker = "
                        "\"PATH\")",
                        file.string(), uplink, path.string(), running.empty() ? "no uplink" : "uplink " + running);
        return;
    }
    try {
        crossover::SwitchUplink::open(uplink);
    } catch (const Error& e) {
        throw Error("{}: uplink: {}", file.string(), e.what());
    }
    std::vector<std::string> args = {"--uplink", uplink};
    for (auto& a : jail_flag_args(jail)) args.push_back(std::move(a));
    crossover::ensure_broker(path, "/proc/self/exe", std::chrono::seconds(5), args);
}

int run_up(const std::filesystem::path& file, vmm::StatsMode stats, const vmm::JailFlags& jail) {
    vmm::UpConfig up = vmm::read_up_file(file);
    std::vector<vmm::VmConfig>& vms = up.vms;
    if (vms.empty()) throw Error("{}: no [[vm]] tables", file.string());
    // Checked here, once, before anything starts; the brokers and VMs it
    // starts jail themselves (as the same user: the broker's rules).
    vmm::parse_jail_options(jail);

    if (up.uplink)
        start_uplink_broker(file, up.broker.value_or(crossover::default_broker_path()), *up.uplink, jail);
    // One broker for every VM that uses the crossover, started before them
    // so that they all find it (each `xover run` would start one otherwise).
    std::map<std::filesystem::path, bool> brokers;
    for (const auto& vm : vms)
        if (vmm::uses_broker(vm)) brokers[vm.broker.value_or(crossover::default_broker_path())] = true;
    for (const auto& [path, _] : brokers)
        crossover::ensure_broker(path, "/proc/self/exe", std::chrono::seconds(5), jail_flag_args(jail));

    struct sigaction action{};
    action.sa_handler = [](int sig) { g_forward_signal = sig; };
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);

    // The file is the operator's consent to link its VMs: they share a
    // random group no other VM knows (crossover/link_planner.hpp).
    if (::setenv(vmm::kConsentGroupEnv, random_group().c_str(), 1) != 0) throw system_error("setenv");
    std::vector<Child> children;
    for (const auto& vm : vms) children.push_back(spawn_vm(file, vm, std::max(stats, vm.stats), jail));

    std::vector<std::filesystem::path> broker_paths;
    for (const auto& [path, _] : brokers) broker_paths.push_back(path);
    api::LinkWatch links(std::move(broker_paths));
    std::size_t running = children.size();
    bool forwarded = false;
    while (running > 0) {
        links.poll();
        if (g_forward_signal && !forwarded) {
            for (auto& c : children)
                if (c.status < 0) ::kill(c.pid, SIGTERM);
            forwarded = true;
        }
        std::vector<pollfd> fds;
        std::vector<std::pair<Child*, bool>> owners;  // (child, is_stdout)
        for (auto& c : children) {
            if (c.out >= 0) fds.push_back({c.out, POLLIN, 0}), owners.push_back({&c, true});
            if (c.err >= 0) fds.push_back({c.err, POLLIN, 0}), owners.push_back({&c, false});
        }
        if (!fds.empty()) ::poll(fds.data(), fds.size(), 200);
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            auto [child, is_out] = owners[i];
            char buf[4096];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            std::string& partial = is_out ? child->partial_out : child->partial_err;
            if (n > 0) {
                partial.append(buf, std::size_t(n));
                flush_lines(*child, partial, is_out ? stdout : stderr, false);
            } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                flush_lines(*child, partial, is_out ? stdout : stderr, true);
                ::close(fds[i].fd);
                (is_out ? child->out : child->err) = -1;
            }
        }
        for (auto& c : children) {
            if (c.status >= 0 || c.out >= 0 || c.err >= 0) continue;
            int wstatus = 0;
            if (::waitpid(c.pid, &wstatus, 0) == c.pid) {
                c.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
                --running;
            }
        }
    }

    int failed = 0;
    fmt::print("\n== xover up: summary ==\n");
    for (const auto& c : children) {
        fmt::print("{}: exit status {}{}\n", c.name, c.status, c.status == 0 ? "" : "  (FAILED)");
        for (const auto& line : summarize(c.summary)) fmt::print("  {}\n", line);
        if (c.status != 0) ++failed;
    }
    if (auto lines = links.summary(); !lines.empty()) {
        fmt::print("links (the broker's counters, last seen while they were up):\n");
        for (const auto& line : lines) fmt::print("  {}\n", line);
    }
    std::fflush(stdout);
    return failed ? 1 : 0;
}

}  // namespace

CommandAction add_up_command(CLI::App& app) {
    auto file = std::make_shared<std::string>();
    auto stats = std::make_shared<std::optional<std::string>>();
    auto* up = app.add_subcommand("up", "Start the broker and every VM of a TOML file; wait for them");
    up->add_option("file", *file, "TOML file with [[vm]] tables")->required();
    add_stats_flag(*up, *stats, "Ask every VM for --stats (--stats=all: for every counter)");
    auto jail = std::make_shared<vmm::JailFlags>();
    add_jail_flags(*up, *jail);
    up->footer(R"(Example:
  xover up configs/crossover-pair.toml
Each [[vm]] table takes the keys of `xover run --config`; console lines are
prefixed with the VM name. Exit status: 0 when every VM exited 0.
Top-level keys: broker = "PATH" (the broker every VM uses by default) and
uplink = "tap:NAME" (that broker's switch uplink; an existing tap).
The jail flags go to every broker and VM it starts: one user for them all.)");
    return [file, stats, up, jail]() -> int {
        if (!up->parsed()) return -1;
        return run_up(*file, *stats ? vmm::parse_stats_flag(**stats) : vmm::StatsMode::Off, *jail);
    };
}

}  // namespace xover::cli
