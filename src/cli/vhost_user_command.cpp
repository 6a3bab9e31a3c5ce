// `xover vhost-user`: serves a QEMU VM's virtio-net queues, or its sound
// card's, as a vhost-user back-end (devices/vhost_user_session.hpp), so
// that the QEMU VM's NIC or card is a crossover peer of xover VMs, or
// reaches a backend (tap, udp, the broker's switch; a WAV file) through
// xover's own device model.
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>

#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/devices/vhost_user_session.hpp"
#include "xover/error.hpp"
#include "xover/sound/backend.hpp"
#include "xover/unix_listener.hpp"
#include "xover/vmm/config_parser.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/seccomp.hpp"

namespace xover::cli {

namespace {

struct VhostUserOptions {
    std::string socket;
    std::string name;
    std::string nic = "virtio-net";
    std::optional<std::string> sound;
    std::vector<std::string> crossover;
    std::optional<std::string> broker;
    std::string log_level = "warn";
    std::optional<std::string> stats;
    std::string seccomp = "kill";
    bool once = false;
    vmm::JailFlags jail;
};

devices::VhostUserConfig resolve(const VhostUserOptions& o) {
    devices::VhostUserConfig config;
    config.vm_name = vmm::check_vm_name(o.name, "--name");
    if (o.sound) {
        config.sound = vmm::parse_sound_spec(*o.sound, "--sound");
        if (config.sound->crossover == config.vm_name)
            throw Error("--sound: VM \"{}\" cannot be its own crossover peer", config.vm_name);
    }
    config.nic = vmm::parse_nic_spec(o.nic, "--nic");
    if (config.nic.model != vmm::NicModel::VirtioNet)
        throw Error("--nic: the front-end's device is virtio-net (QEMU's virtio-net-pci), not {}",
                    vmm::to_string(config.nic.model));
    if (config.nic.crossover_mode == vmm::CrossoverMode::Window)
        throw Error("--nic: mode=window needs a KVM VM's memory slots; a vhost-user NIC links in copy mode");
    for (const auto& peer : o.crossover) config.nic.crossover.push_back(peer);
    if (!config.nic.mac) config.nic.mac = vmm::default_mac(config.vm_name, 0);
    config.broker = o.broker ? std::filesystem::path(*o.broker) : crossover::default_broker_path();
    if (const char* group = std::getenv(vmm::kConsentGroupEnv)) config.consent_group = group;
    if (o.stats) {
        vmm::StatsMode mode = vmm::parse_stats_flag(*o.stats);
        config.print_stats = mode != vmm::StatsMode::Off;
        config.all_stats = mode == vmm::StatsMode::All;
    }
    return config;
}

vmm::SeccompMode seccomp_mode(const std::string& value) {
    return value == "off" ? vmm::SeccompMode::Off : value == "log" ? vmm::SeccompMode::Log : vmm::SeccompMode::Kill;
}

// SIGINT/SIGTERM end the back-end (the session's device stops first, so
// its links go down at the broker).
kvm::UniqueFd watch_signals(vmm::EventLoop& loop) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw Error("cannot block SIGINT/SIGTERM");
    kvm::UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) throw system_error("signalfd");
    int raw = fd.get();
    loop.watch(raw, vmm::EventLoop::Interest::Readable, [raw, &loop] {
        signalfd_siginfo info{};
        if (::read(raw, &info, sizeof info) != sizeof info) return;
        spdlog::info("signal {} received; stopping", info.ssi_signo);
        loop.stop();
    });
    return fd;
}

int serve(const VhostUserOptions& options) {
    spdlog::set_level(spdlog::level::from_str(options.log_level));
    const devices::VhostUserConfig config = resolve(options);
    const vmm::JailOptions jail = vmm::parse_jail_options(options.jail);
    vmm::enter_pid_namespace(jail);
    auto loop = vmm::make_event_loop();
    kvm::UniqueFd signals = watch_signals(*loop);
    kvm::UniqueFd listener = listen_unix_stream(options.socket, "vhost-user socket", 4);
    // Opened once, before the sandbox (a tap needs /dev/net/tun): every
    // session's device sends through it.
    std::unique_ptr<devices::LastingBackend> backend =
        devices::make_lasting_backend(config.sound ? net::BackendSpec{net::NoneSpec{}} : config.nic.backend,
                                      config.vm_name, *config.nic.mac, config.broker, *loop);
    // A sound card's files likewise (a crossover card's cable is made per session).
    std::unique_ptr<sound::Backend> sound_backend;
    devices::VhostUserConfig served = config;
    if (config.sound && !config.sound->crossover) {
        sound_backend = sound::make_backend(config.sound->backend);
        served.sound_backend = sound_backend.get();
    }
    // Everything is open: the jail from here on (vmm/jail.hpp). Each
    // session registers with the broker by path, and the socket goes at exit.
    const std::filesystem::path keep[] = {config.broker.parent_path(),
                                          std::filesystem::absolute(options.socket).parent_path()};
    vmm::enter_jail(jail, keep);
    // The front-end's requests, its memory and rings, and peers' shared
    // pages are hostile input: from here on the process can make only the
    // syscalls serving them needs (vmm/seccomp.hpp).
    vmm::apply_seccomp(seccomp_mode(options.seccomp), vmm::SeccompProfile::VhostUser);
    vmm::seccomp_test_probe();
    std::unique_ptr<devices::VhostUserSession> session;
    std::uint64_t sessions = 0;  // which session a posted end belongs to
    int status = 0;
    // One front-end at a time (one NIC); the next may connect once it
    // left, even before the old session's end was handled.
    loop->watch(listener.get(), vmm::EventLoop::Interest::Readable, [&] {
        kvm::UniqueFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd) return;
        if (session) session->catch_up();
        if (session && !session->over()) {
            spdlog::warn("vhost-user: {}: a second front-end connected while one is served; closed", options.socket);
            return;
        }
        spdlog::info("vhost-user: {}: front-end connected", options.socket);
        std::uint64_t id = ++sessions;
        session = std::make_unique<devices::VhostUserSession>(served, *loop, *backend, std::move(fd), [&, id](const std::string& why) {
            if (why.empty()) spdlog::info("vhost-user: {}: front-end left", options.socket);
            else spdlog::error("vhost-user: {}: session ended: {}", options.socket, why);
            if (id == sessions) session.reset();
            if (options.once) {
                status = why.empty() ? 0 : 1;
                loop->stop();
            }
        });
    });
    if (config.sound)
        std::fprintf(stderr, "vhost-user: %s serves %s's sound card (%s)\n", options.socket.c_str(),
                     config.vm_name.c_str(),
                     config.sound->crossover ? ("crossover " + *config.sound->crossover).c_str()
                                             : sound::to_string(config.sound->backend).c_str());
    else
        std::fprintf(stderr, "vhost-user: %s serves %s (mac %s)\n", options.socket.c_str(), config.vm_name.c_str(),
                     config.nic.mac->to_string().c_str());
    loop->run();
    session.reset();
    backend.reset();
    sound_backend.reset();
    loop->unwatch(listener.get(), vmm::EventLoop::Interest::Readable);
    ::unlink(options.socket.c_str());
    return status;
}

}  // namespace

CommandAction add_vhost_user_command(CLI::App& app) {
    auto options = std::make_shared<VhostUserOptions>();
    auto* cmd = app.add_subcommand("vhost-user", "Serve a QEMU VM's virtio-net or sound card as a vhost-user back-end");
    cmd->footer(R"(The QEMU VM's NIC becomes a crossover peer of xover VMs (copy mode), under --name:
  xover vhost-user --socket /tmp/q1.sock --name q1 --nic virtio-net,mac=52:54:00:00:00:01,crossover=vm-b
  qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
      -chardev socket,id=c0,path=/tmp/q1.sock -netdev vhost-user,id=n0,chardev=c0 \
      -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,disable-legacy=on
The MAC must be the one QEMU's device has: peers send to it.
A QEMU VM's sound card (QEMU 8.2 or later) wired to an xover VM's, or playing into a WAV file:
  xover vhost-user --socket /tmp/q1-snd.sock --name q1 --sound virtio-snd,crossover=vm-b
  qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
      -chardev socket,id=s0,path=/tmp/q1-snd.sock -device vhost-user-snd-pci,chardev=s0)");
    auto& o = *options;
    cmd->add_option("--socket", o.socket, "Unix socket QEMU's -chardev socket connects to")->required();
    cmd->add_option("--name", o.name, "The QEMU VM's name at the crossover broker")->required();
    cmd->add_option("--nic", o.nic, "NIC: virtio-net[,mac=..][,backend=..][,crossover=a+b] (as xover run's --nic)");
    cmd->add_option("--crossover", o.crossover, "Crossover peer VM name, or auto (repeatable)");
    cmd->add_option_function<std::string>("--sound", [&o](const std::string& v) { o.sound = v; },
                                          "Serve a sound card instead: virtio-snd[,backend=..][,crossover=PEER] "
                                          "(as xover run's --sound)")
        ->excludes("--nic")
        ->excludes("--crossover");
    cmd->add_option_function<std::string>("--broker", [&o](const std::string& v) { o.broker = v; },
                                          "Crossover broker socket");
    cmd->add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off");
    add_stats_flag(*cmd, o.stats, "Print the NIC's counters that are not 0 (--stats=all: every counter) when its device stops");
    cmd->add_option("--seccomp", o.seccomp,
                    "kill (default), log or off: what a syscall outside the back-end's allow-list does once it listens")
        ->check(CLI::IsMember({"kill", "log", "off"}));
    add_jail_flags(*cmd, o.jail);
    cmd->add_flag("--once", o.once, "Exit when the first front-end leaves (status 1 if its session failed)");
    return [options, cmd]() -> int {
        if (!cmd->parsed()) return -1;
        return serve(*options);
    };
}

}  // namespace xover::cli
