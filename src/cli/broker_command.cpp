#include "xover/crossover/broker_command.hpp"

#include <csignal>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "broker_api.hpp"
#include "commands.hpp"
#include "xover/api/api_client.hpp"
#include "xover/api/api_server.hpp"
#include "xover/json.hpp"
#include "xover/crossover/broker.hpp"

namespace xover::cli {

namespace {

crossover::Broker* g_running_broker = nullptr;

extern "C" void stop_broker_on_signal(int) {
    if (g_running_broker) g_running_broker->stop();  // an eventfd write: async-signal-safe
}

std::filesystem::path socket_path(const BrokerCommandOptions& o) {
    return o.broker.value_or(crossover::default_broker_path());
}

void add_common_options(CLI::App& cmd, BrokerCommandOptions& o) {
    cmd.add_option_function<std::string>(
        "--broker", [&o](const std::string& p) { o.broker = p; },
        "The broker socket (default $XDG_RUNTIME_DIR/xover/broker.sock or /run/xover/broker.sock)");
    cmd.add_flag("--json", o.json, "Print the status as JSON (xover status, xover broker --status)");
}

}  // namespace

// Through the broker's control API; straight from the broker socket when
// nothing answers there (a broker started with another --api-socket).
// Only a broker of this user's or root's is asked, as when linking: the
// broker socket's credentials are checked first (connect_broker throws).
std::string broker_status(const std::filesystem::path& broker, bool json) {
    if (!crossover::connect_broker(broker)) throw Error("no broker is listening on {}", broker.string());
    try {
        api::ApiResponse r = api::api_call(api::broker_api_socket(broker), "GET", json ? "/status" : "/status?format=text");
        if (r.status == 200) return json ? json_line(Json::parse(r.body)) : r.body;
    } catch (const Error&) {
    }
    return crossover::request_status(broker, json);
}

int run_status_command(const BrokerCommandOptions& options) {
    try {
        std::fputs(broker_status(socket_path(options), options.json).c_str(), stdout);
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "xover: %s\n", e.what());
        return 1;
    }
}

int run_broker_command(const BrokerCommandOptions& options) {
    if (options.status) return run_status_command(options);
    spdlog::set_level(spdlog::level::from_str(options.log_level));
    crossover::BrokerOptions bo;
    bo.socket_path = socket_path(options);
    bo.exit_when_idle = options.exit_when_idle;
    bo.uplink = options.uplink;
    bo.link_any_uid = options.link_any_uid;
    if (auto mode = vmm::parse_seccomp_mode(options.seccomp)) bo.seccomp = *mode;
    const std::filesystem::path api_socket = options.api_socket.value_or(api::broker_api_socket(bo.socket_path));
    std::unique_ptr<crossover::Broker> broker;
    vmm::JailOptions jail;
    try {
        jail = vmm::parse_jail_options(options.jail);
        vmm::enter_pid_namespace(jail);
        broker = std::make_unique<crossover::Broker>(bo);
        // Listening: the jail from here on (vmm/jail.hpp). Its API socket
        // is made in it, and asks the broker on its socket by path.
        const std::filesystem::path keep[] = {bo.socket_path.parent_path(), api_socket.parent_path()};
        const std::filesystem::path own[] = {bo.socket_path};
        vmm::enter_jail(jail, keep, own);
    } catch (const crossover::BrokerAlreadyRunning& e) {
        // Started on demand by a VM that raced another VM: the other broker serves both.
        if (options.exit_when_idle) return 0;
        std::fprintf(stderr, "xover: %s\n", e.what());
        return 1;
    } catch (const Error& e) {
        std::fprintf(stderr, "xover: %s\n", e.what());
        return 1;
    }
    // The API starts before the broker's seccomp filter, which then covers
    // its threads too (vmm/seccomp.cpp: the filter is synced to every thread).
    std::unique_ptr<api::ApiServer> api_server;
    try {
        api_server = serve_broker_api(api_socket, bo.socket_path, bo.seccomp);
    } catch (const Error& e) {
        std::fprintf(stderr, "xover: broker: %s\n", e.what());
        return 1;
    }
    g_running_broker = broker.get();
    std::signal(SIGINT, stop_broker_on_signal);
    std::signal(SIGTERM, stop_broker_on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    try {
        broker->run();
    } catch (const Error& e) {
        std::fprintf(stderr, "xover: broker: %s\n", e.what());
        rc = 1;
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    g_running_broker = nullptr;
    return rc;
}

void add_broker_commands(CLI::App& app) {
    auto options = std::make_shared<BrokerCommandOptions>();

    CLI::App* broker = app.add_subcommand("broker", "Run the crossover broker (control plane and slow-path switch)");
    add_common_options(*broker, *options);
    broker->add_flag("--exit-when-idle", options->exit_when_idle, "Exit when the last VM leaves");
    broker->add_option("--uplink", options->uplink,
                       "The slow-path switch's uplink: tap:NAME, an existing tap (ip tuntap add NAME mode tap); "
                       "frames for no VM's MAC, and broadcast, go out there");
    broker->add_flag("--link-any-uid", options->link_any_uid,
                     "Link VMs that run as different users (each side still has to name the other); by default "
                     "only VMs of one uid are linked, and only this broker's uid and root may register");
    broker->add_option("--seccomp", options->seccomp,
                       "kill (default), log or off: what a syscall outside the broker's allow-list does once it "
                       "listens")
        ->check(CLI::IsMember({"kill", "log", "off"}));
    broker->add_option_function<std::string>(
        "--api-socket", [o = options.get()](const std::string& p) { o->api_socket = p; },
        "The broker's control API (HTTP/JSON; docs/openapi.json) (default: broker.api.sock next to the broker "
        "socket)");
    add_jail_flags(*broker, options->jail);
    broker->add_flag("--status", options->status, "Print the running broker's VMs, NICs and links, then exit");
    broker->add_option("--log-level", options->log_level, "trace, debug, info, warn, error or off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
    broker->callback([options] {
        if (int rc = run_broker_command(*options); rc != 0) throw CLI::RuntimeError(rc);
    });

    CLI::App* status = app.add_subcommand("status", "Print the running broker's VMs, NICs and links");
    add_common_options(*status, *options);
    status->callback([options] {
        if (int rc = run_status_command(*options); rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace xover::cli
