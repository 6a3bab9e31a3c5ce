// Subcommands of the `xover` binary. Each registers its flags on the app
// and returns the code to run after parsing.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "xover/vmm/jail.hpp"

namespace xover::cli {

using CommandAction = std::function<int()>;

// --stats[=all] on `app` (run, up): the value given, "true" when bare,
// into `target` (checked later, vmm::parse_stats_flag).
void add_stats_flag(CLI::App& app, std::optional<std::string>& target, const std::string& help);

// --uid, --gid, --chroot and --namespaces on `app` (run, broker,
// vhost-user): the jail (vmm/jail.hpp) the process enters once set up.
void add_jail_flags(CLI::App& app, vmm::JailFlags& flags);
// The same flags again, as given, for a broker or VM this one starts: a
// jailed group runs as one user.
std::vector<std::string> jail_flag_args(const vmm::JailFlags& flags);

// `xover run`: one VM.
CommandAction add_run_command(CLI::App& app);

// `xover up FILE.toml`: broker + every VM of the file, consoles prefixed.
CommandAction add_up_command(CLI::App& app);

// `xover ctl TARGET VERB ...`: the control API's command line (a VM's or the broker's).
CommandAction add_ctl_command(CLI::App& app);

// `xover vhost-user`: a QEMU VM's virtio-net served as a vhost-user back-end.
CommandAction add_vhost_user_command(CLI::App& app);

// `xover counters`: the NIC counters --stats prints, with their meanings.
CommandAction add_counters_command(CLI::App& app);

}  // namespace xover::cli
