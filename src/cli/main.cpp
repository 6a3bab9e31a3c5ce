// The `xover` binary: subcommands over the xover libraries.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "xover/crossover/broker_command.hpp"
#include "xover/error.hpp"

namespace {

// A script's background job (`xover run ... &` with job control off)
// starts with SIGINT ignored, as POSIX asks of the shell. Every xover
// command stops on SIGINT and SIGTERM however it was started, as QEMU and
// Firecracker do: an ignored SIGINT is discarded when it arrives, so one
// sent before `run` blocks it for its signalfd (vmm/machine.cpp) was lost
// and the VM never stopped. Until a command takes them over, they end the
// process, as they would an interactive one.
void stop_signals_take_default_action() {
    for (int sig : {SIGINT, SIGTERM}) std::signal(sig, SIG_DFL);
}

}  // namespace

int main(int argc, char** argv) {
    stop_signals_take_default_action();
    // Logs go to stderr: stdout belongs to the guest console.
    spdlog::set_default_logger(spdlog::stderr_color_mt("xover"));
    spdlog::set_pattern("xover: %^%l%$: %v");
    spdlog::set_level(spdlog::level::warn);

    CLI::App app{"xover: a small KVM virtual machine monitor with a virtual DMA crossover between VMs"};
    app.set_version_flag("--version", "xover " XOVER_VERSION);
    app.require_subcommand(1);
    app.footer("Run `xover <command> --help` for a command's flags.");
    std::vector<xover::cli::CommandAction> actions;
    actions.push_back(xover::cli::add_run_command(app));
    actions.push_back(xover::cli::add_up_command(app));
    actions.push_back(xover::cli::add_ctl_command(app));
    actions.push_back(xover::cli::add_counters_command(app));
    actions.push_back(xover::cli::add_vhost_user_command(app));
    xover::cli::add_broker_commands(app);  // `broker`, `status`: run from their parse callbacks

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto& action : actions) {
            int status = action();
            if (status >= 0) return status;
        }
    } catch (const xover::Error& e) {
        std::fprintf(stderr, "xover: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "xover: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
