// `xover broker` and `xover status`: the subcommands of the crossover
// control plane. Implemented in src/cli/broker_command.cpp (part of the
// xover executable); main() calls add_broker_commands(app) before parsing.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "xover/vmm/jail.hpp"

namespace CLI { class App; }

namespace xover::cli {

struct BrokerCommandOptions {
    std::optional<std::filesystem::path> broker;  // default: crossover::default_broker_path()
    std::optional<std::filesystem::path> api_socket;  // default: api::broker_api_socket(broker)
    bool exit_when_idle = false;
    bool link_any_uid = false;
    std::string seccomp = "kill";  // kill | log | off
    std::string uplink;   // --uplink tap:NAME ("" = none)
    bool status = false;  // print the running broker's status instead of serving
    bool json = false;
    std::string log_level = "info";
    vmm::JailFlags jail;
};

// Registers `broker` and `status`. Their callbacks run the command and throw
// CLI::RuntimeError(code) when it fails, so `return app.exit(e)` in main's
// catch turns that into the exit status.
void add_broker_commands(CLI::App& app);

// The command bodies; return the process exit status.
int run_broker_command(const BrokerCommandOptions& options);
int run_status_command(const BrokerCommandOptions& options);

}  // namespace xover::cli
