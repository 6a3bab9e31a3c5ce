#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <variant>
#include <vector>

#include "commands.hpp"
#include "vm_api.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/devices/device_manager.hpp"
#include "xover/error.hpp"
#include "xover/vmm/config_parser.hpp"
#include "xover/vmm/loader.hpp"
#include "xover/vmm/machine.hpp"

namespace xover::cli {

namespace {

// The VM's configuration: one [[vm]] of an `xover up` file, or the flags
// (and --config file) of `xover run`.
vmm::VmConfig resolve(const vmm::RunOptions& options, const std::string& up_file, const std::string& up_vm) {
    if (up_file.empty()) return vmm::resolve_run_config(options);
    for (auto& vm : vmm::load_up_file(up_file))
        if (vm.name == up_vm) {
            // `xover up` passes the larger of its --stats and the file's.
            if (options.stats) vm.stats = vmm::parse_stats_flag(*options.stats);
            if (const char* group = std::getenv(vmm::kConsentGroupEnv)) vm.consent_group = group;
            return vm;
        }
    throw Error("{}: no [[vm]] named \"{}\"", up_file, up_vm);
}

// The VM's control API: on config.api_socket (an error there stops the VM
// before it starts), not at all for "none", and by default on
// vm.NAME.api.sock next to the broker socket, where a failure only costs
// the API.
std::unique_ptr<api::ApiServer> start_vm_api(const vmm::VmConfig& config, vmm::Machine& machine,
                                             devices::DeviceManager& devices) {
    const std::string& option = config.api_socket;
    if (option == "none") return nullptr;
    if (!option.empty()) return serve_vm_api(option, machine, devices);
    const auto path = api::vm_api_socket(config.broker.value_or(crossover::default_broker_path()), config.name);
    try {
        crossover::prepare_socket_dir(path);
        return serve_vm_api(path, machine, devices);
    } catch (const Error& e) {
        spdlog::warn("no control API: {} (--api-socket PATH chooses another socket, none goes without)", e.what());
        return nullptr;
    }
}

// The directories a jailed VM still reaches by path (vmm/jail.hpp): its
// broker's (again, after a restart), its API socket's, its vhost-user
// back-ends' (it reconnects, or removes its socket). The default API
// directory is made now, outside: one made inside would be the jail's own.
std::vector<std::filesystem::path> dirs_kept_in_jail(const vmm::VmConfig& config,
                                                     const std::filesystem::path& broker) {
    std::vector<std::filesystem::path> keep = {broker.parent_path()};
    if (config.api_socket.empty()) {
        try {
            crossover::prepare_socket_dir(api::vm_api_socket(broker, config.name));
        } catch (const Error&) {
            // start_vm_api says why there is no API.
        }
    } else if (config.api_socket != "none") {
        keep.push_back(std::filesystem::path(config.api_socket).parent_path());
    }
    for (const auto& nic : config.nics)
        if (const auto* vu = std::get_if<net::VhostUserSpec>(&nic.backend))
            keep.push_back(std::filesystem::path(vu->path).parent_path());
    return keep;
}

int run_vm(const vmm::RunOptions& options, const std::string& up_file, const std::string& up_vm,
           const vmm::JailFlags& jail_flags) {
    vmm::VmConfig config = resolve(options, up_file, up_vm);
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    vmm::check_kernel_format(config.kernel, config.memory_bytes);  // before /dev/kvm: named on any host
    const vmm::JailOptions jail = vmm::parse_jail_options(jail_flags);
    const std::filesystem::path broker = config.broker.value_or(crossover::default_broker_path());
    // A broker this VM would start must not start in its jail (no xover
    // binary there) or in its pid namespace (it would die with the VM); it
    // gets a jail of its own, as the same user (the broker's rules).
    if (jail.any() && vmm::uses_broker(config))
        crossover::ensure_broker(broker, "/proc/self/exe", std::chrono::seconds(5), jail_flag_args(jail_flags));
    vmm::enter_pid_namespace(jail);
    // The device manager outlives the machine: the NICs it builds use its broker agent.
    devices::DeviceManager devices(config);
    vmm::Machine machine(config, devices.nic_factory(), devices.sound_factory());
    // Everything is open: the jail from here on (vmm/jail.hpp).
    if (jail.any()) vmm::enter_jail(jail, dirs_kept_in_jail(config, broker));
    devices.register_crossover(machine.loop());
    // Started before run() loads the seccomp filter, which covers its threads too.
    std::unique_ptr<api::ApiServer> api_server = start_vm_api(config, machine, devices);
    int status = machine.run();
    api_server.reset();  // the API serves a running VM only, and must go before the machine
    machine.report_exit(stderr);
    return status;
}

}  // namespace

void add_stats_flag(CLI::App& app, std::optional<std::string>& target, const std::string& help) {
    // A flag, not an option with an optional value: `--stats FILE` must
    // leave FILE alone. Bare, it gives "true"; --stats=all gives "all".
    app.add_flag("--stats", help)->each([&target](const std::string& value) { target = value; });
}

CommandAction add_run_command(CLI::App& app) {
    auto options = std::make_shared<vmm::RunOptions>();
    auto* run = app.add_subcommand("run", "Run one VM");
    run->footer(R"(Examples:
  xover run --kernel hello.elf --cmdline "hello world"
  xover run --kernel vmlinux --initrd initrd.cpio --mem 256M --cpus 2 --cpu-template baseline \
            --cmdline "console=ttyS0" --nic e1000,backend=tap:tap0
  xover run --config vm-a.toml --stats
  xover run --config vm-a.toml --stats=all --metrics vm-a.metrics --metrics-interval 10
Exit status: the value the guest wrote to the debug-exit port 0xf4, 0 when it
reset the machine, 1 on a triple fault or VMM error, 128+N on signal N.)");
    auto str = [&](const char* name, std::optional<std::string>& target, const char* help) {
        run->add_option_function<std::string>(name, [&target](const std::string& v) { target = v; }, help);
    };
    auto& o = *options;
    run->add_option_function<std::string>("--config", [&o](const std::string& v) { o.config = v; },
                                          "TOML file with the VM's settings (flags override it)");
    str("--kernel", o.kernel, "Kernel to boot: PVH ELF or Linux bzImage");
    str("--cmdline", o.cmdline, "Kernel command line");
    str("--initrd", o.initrd, "Initial ramdisk");
    str("--mem", o.mem, "Guest memory size, e.g. 128M, 1G");
    run->add_option_function<std::int64_t>("--cpus", [&o](std::int64_t v) { o.cpus = v; }, "Number of vCPUs");
    str("--name", o.name, "VM name (used by the crossover broker)");
    str("--console", o.console, "Serial console: stdout, file:PATH or none");
    add_stats_flag(*run, o.stats, "Print the counters that are not 0 (--stats=all: every counter) to stderr at exit");
    run->add_option_function<std::string>("--metrics", [&o](const std::string& v) { o.metrics = v; },
                                          "Append the VM's counters to this file as one JSON object a line, every "
                                          "--metrics-interval and at exit")
        ->type_name("PATH");
    run->add_option_function<std::int64_t>("--metrics-interval", [&o](std::int64_t v) { o.metrics_interval = v; },
                                           "Seconds between --metrics lines (default 60)")
        ->type_name("SECONDS");
    str("--log-level", o.log_level, "trace, debug, info, warn, error or off");
    str("--cpu-template", o.cpu_template, "CPUID template: host (default) or baseline");
    str("--broker", o.broker, "Crossover broker socket");
    str("--seccomp", o.seccomp,
        "kill (default), log or off: what a syscall outside the VMM's allow-list does once the VM runs");
    run->add_option("--nic", o.nics, "NIC: MODEL[,mac=..][,backend=..][,crossover=a+b][,mode=copy|window] (repeatable)");
    run->add_option("--crossover", o.crossover, "Crossover peer VM name, or auto (repeatable)");
    run->add_option("--sound", o.sounds,
                    "Sound card: virtio-snd[,backend=none|wav:OUT.wav[,in=IN.wav]][,crossover=PEER] (at most one)");
    str("--api-socket", o.api_socket,
        "Control API socket (HTTP/JSON, docs/openapi.json), or none (default: vm.NAME.api.sock next to the broker "
        "socket)");
    auto jail = std::make_shared<vmm::JailFlags>();
    add_jail_flags(*run, *jail);
    // Used by `xover up` to start one VM of its file.
    auto up_file = std::make_shared<std::string>();
    auto up_vm = std::make_shared<std::string>();
    run->add_option("--from-up", *up_file)->group("");
    run->add_option("--vm", *up_vm)->group("");
    return [options, run, up_file, up_vm, jail]() -> int {
        if (!run->parsed()) return -1;
        return run_vm(*options, *up_file, *up_vm, *jail);
    };
}

}  // namespace xover::cli
