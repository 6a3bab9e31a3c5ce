#include "xover/vmm/seccomp.hpp"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <vector>

#include "xover/error.hpp"

namespace xover::vmm {

namespace {

struct Allowed {
    const char* name;
    const char* why;
};

// Both processes, whatever runs: memory, threads, time, exit.
constexpr Allowed kCommon[] = {
    {"read", "eventfds, timerfds, signalfd, tap and sockets"},
    {"write", "eventfds (irqfds, doorbells), tap, console, logs"},
    {"close", "a peer's fds at link-down, accepted sockets"},
    {"mmap", "malloc, a peer's memory and state page at link-up"},
    {"munmap", "free, a peer's mappings at link-down"},
    {"mprotect", "malloc arenas of new threads"},
    {"madvise", "malloc returning memory, thread stacks"},
    {"brk", "malloc"},
    {"futex", "mutexes, condition variables, thread joins"},
    {"sched_yield", "an MSI-X route change waits for producers in flight (nic/peer_interrupt.hpp)"},
    {"clock_gettime", "steady_clock where the vDSO cannot serve it (CPU-time clocks)"},
    {"clock_nanosleep", "sleep_for"},
    {"nanosleep", "sleep_for"},
    {"gettid", "logging"},
    {"getpid", "logging, signal forwarding"},
    {"rt_sigreturn", "return from the vCPU kick handler"},
    {"rt_sigprocmask", "blocking signals around thread starts, unblocking at exit"},
    {"rt_sigaction", "restoring signal dispositions at exit"},
    {"exit", "a thread ends"},
    {"exit_group", "the process ends"},
    {"restart_syscall", "a syscall interrupted by the kick signal"},
    {"getrandom", "libstdc++ hashing, never for keys here"},
    {"newfstatat", "memfd sizes (fstat) before mapping a peer's memory"},
    {"fstat", "memfd sizes on older libcs"},
    {"fcntl", "F_DUPFD_CLOEXEC of received fds, O_NONBLOCK"},
    {"pread64", "a sound card's WAV input (opened before the sandbox)"},
    {"pwrite64", "a sound card's WAV output and its header (opened before the sandbox)"},
    {"recvmsg", "broker messages with SCM_RIGHTS"},
    {"sendmsg", "broker messages"},
    {"recvfrom", "udp backend, the slow-path switch"},
    {"recvmmsg", "udp backend batches"},
    {"sendmmsg", "udp backend batches"},
    {"sendto", "udp backend, the slow-path switch"},
    {"poll", "bounded waits on sockets"},
    {"ppoll", "bounded waits on sockets"},
    {"getsockopt", "SO_ERROR of a connecting stream, SO_PEERCRED of a client"},
    {"setsockopt", "TCP_NODELAY on a stream backend's new connection; the API's socket timeouts"},
    {"geteuid", "checking that a (restarted) broker and its directory are this user's; the broker API asking it"},
    {"unlink", "removing its sockets (the broker's, the control API's) when it exits"},
    // The control API's threads (api/api_server.hpp, cpp-httplib).
    {"accept", "the control API's new connections"},
    {"getpeername", "the control API: a connection's peer"},
    {"getsockname", "the control API: a connection's own address"},
    {"shutdown", "the control API closing a connection, a stream backend closing"},
};

// `xover run` once the VM runs (Machine::run).
constexpr Allowed kVmm[] = {
    {"ioctl", "KVM_RUN, KVM_IRQ_LINE, KVM_SET_USER_MEMORY_REGION (window remaps), ioeventfds, irqfds, TUN"},
    {"io_uring_enter", "the I/O thread's event loop"},
    {"timerfd_settime", "device timers (e1000 moderation, the posted-write watchdog)"},
    {"set_robust_list", "new threads"},
    {"rseq", "new threads"},
    {"prctl", "PR_SET_NAME of the I/O and vCPU threads"},
    {"sched_setattr", "the I/O thread's short time slice"},
    {"tgkill", "kicking a vCPU out of KVM_RUN"},
    {"signalfd4", "(re)arming the SIGINT/SIGTERM signalfd"},
    {"connect", "a stream backend reconnecting, a VM reaching a restarted crossover broker"},
    {"accept4", "a stream-listen backend's peer connecting"},
    {"eventfd2", "io_uring wake-ups"},
    {"pidfd_open", "telling a dead holder of a shared-page lock from a busy one (nic/owned_lock.hpp)"},
};

// `xover vhost-user` once it listens: one thread, no KVM. Its NIC's
// backend (a tap, a socket, the switch port) is open by then; each
// session builds its device anew (the NIC's state page, timers, the
// broker registration), so those creations stay allowed. Files never open.
constexpr Allowed kVhostUser[] = {
    {"io_uring_enter", "the event loop"},
    {"timerfd_create", "a started device's retry timer, its broker agent's reconnect timer"},
    {"timerfd_settime", "those timers"},
    {"memfd_create", "a started device's shared state page (its crossover NIC)"},
    {"ftruncate", "sizing that page"},
    {"eventfd2", "a started device's doorbell"},
    {"signalfd4", "(re)arming the SIGINT/SIGTERM signalfd"},
    {"accept4", "the front-end connecting"},
    {"connect", "registering a started device with the broker; a stream or switch backend reconnecting"},
    {"pidfd_open", "telling a dead holder of a shared-page lock from a busy one (nic/owned_lock.hpp)"},
};

// `xover broker` once it listens (Broker::run).
constexpr Allowed kBroker[] = {
    {"accept4", "new clients"},
    {"connect", "the control API asking the broker's own socket for its status"},
};

// In AddressSanitizer builds: what LeakSanitizer's exit-time check needs
// (it stops the world with a ptrace()ing clone and reads /proc).
#if defined(__SANITIZE_ADDRESS__)
constexpr Allowed kSanitizer[] = {
    // LSan's tracer: a clone (no CLONE_THREAD) that ptrace()s every thread.
    {"clone", "LSan's tracer"}, {"ptrace", "LSan stops every thread"}, {"wait4", "LSan's tracer"},
    {"waitid", "LSan's tracer"}, {"kill", "LSan's tracer"}, {"tgkill", "ASan aborting"},
    {"getppid", "LSan"}, {"prctl", "PR_SET_PTRACER, PDEATHSIG"}, {"sigaltstack", "LSan's tracer"},
    {"sched_getaffinity", "LSan"}, {"pipe", "LSan"}, {"pipe2", "LSan"},
    // /proc/self/{maps,task,exe}: the sanitizer runtime uses the old syscalls.
    {"open", "/proc files"}, {"openat", "/proc files"}, {"stat", "/proc files"}, {"lstat", "/proc files"},
    {"getdents", "/proc/self/task"}, {"getdents64", "/proc/self/task"}, {"lseek", "/proc files"},
    {"readlink", "/proc/self/exe"}, {"readlinkat", "/proc/self/exe"}, {"access", "symbolizer lookup"},
    {"mremap", "ASan allocator"}, {"getrlimit", "ASan"}, {"prlimit64", "ASan"}, {"uname", "ASan reports"},
    {"dup", "ASan reports"}, {"dup2", "ASan reports"}, {"dup3", "ASan reports"}, {"fstatfs", "ASan"},
    {"statfs", "ASan"}, {"sched_yield", "LSan"}, {"arch_prctl", "LSan's tracer"}, {"set_robust_list", "LSan"},
};
#endif

void allow_rule(scmp_filter_ctx ctx, int nr, const char* what, std::initializer_list<scmp_arg_cmp> args) {
    if (int rc = ::seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, unsigned(args.size()), args.begin()); rc < 0)
        throw Error("seccomp: allowing {}: {}", what, std::strerror(-rc));
}

void allow(scmp_filter_ctx ctx, const Allowed& a) {
    int nr = ::seccomp_syscall_resolve_name(a.name);
    if (nr == __NR_SCMP_ERROR) return;  // not a syscall on this architecture
    if (int rc = ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc < 0 && rc != -EEXIST)
        throw Error("seccomp: allowing {}: {}", a.name, std::strerror(-rc));
}

template <std::size_t N>
void allow_all(scmp_filter_ctx ctx, const Allowed (&list)[N]) {
    for (const auto& a : list) allow(ctx, a);
}

}  // namespace

void apply_seccomp(SeccompMode mode, SeccompProfile profile) {
    if (mode == SeccompMode::Off) return;
    // What the libraries load lazily, loaded now: the first log line's
    // local time reads /etc/localtime (glibc reads it once).
    ::tzset();
    std::time_t now = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&now, &local);
    const std::uint32_t deny = mode == SeccompMode::Kill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG;
    std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(::seccomp_init(deny), ::seccomp_release);
    if (!ctx) throw Error("seccomp: cannot create a filter");
    allow_all(ctx.get(), kCommon);
    // IPv4 and IPv6 sockets only: a stream backend reconnecting, and the
    // throwaway datagram socket that asks a tap's flags (SIOCGIFFLAGS).
    // Never a netlink or packet socket; a Unix one for the VM's broker only.
    for (int family : {AF_INET, AF_INET6})
        allow_rule(ctx.get(), SCMP_SYS(socket), "socket(AF_INET*)", {SCMP_A0(SCMP_CMP_EQ, unsigned(family))});
    // A Unix SOCK_SEQPACKET socket, the broker protocol's only kind: a VM
    // registering again with a restarted broker (VmAgent), the broker's
    // control API asking its own broker for the status.
    allow_rule(ctx.get(), SCMP_SYS(socket), "socket(AF_UNIX, SOCK_SEQPACKET)",
               {SCMP_A0(SCMP_CMP_EQ, unsigned(AF_UNIX)), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_SEQPACKET)});
    if (profile == SeccompProfile::Vmm) {
        allow_all(ctx.get(), kVmm);
        // A Unix stream socket: a NIC on a vhost-user back-end connecting
        // to it again after it went away.
        allow_rule(ctx.get(), SCMP_SYS(socket), "socket(AF_UNIX, SOCK_STREAM)",
                   {SCMP_A0(SCMP_CMP_EQ, unsigned(AF_UNIX)), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM)});
        // The I/O and vCPU threads start after the filter is loaded: clone
        // with CLONE_THREAD only (a thread, never a process). clone3's
        // flags are behind a pointer the filter cannot read, so it fails
        // with ENOSYS and glibc falls back to clone.
        allow_rule(ctx.get(), SCMP_SYS(clone), "clone(CLONE_THREAD)",
                   {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)});
        if (int rc = ::seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0); rc < 0)
            throw Error("seccomp: clone3 -> ENOSYS: {}", std::strerror(-rc));
    } else if (profile == SeccompProfile::VhostUser) {
        allow_all(ctx.get(), kVhostUser);
    } else {
        allow_all(ctx.get(), kBroker);
        // SIOCGIFFLAGS only: the uplink tap's carrier, for status.
        allow_rule(ctx.get(), SCMP_SYS(ioctl), "ioctl(SIOCGIFFLAGS)", {SCMP_A1(SCMP_CMP_EQ, SIOCGIFFLAGS)});
    }
#if defined(__SANITIZE_ADDRESS__)
    allow_all(ctx.get(), kSanitizer);
#endif
    // Every thread of the process gets the filter, those started before it
    // too: the control API's (api/api_server.hpp) start before it is loaded.
    if (int rc = ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc < 0)
        throw Error("seccomp: syncing the filter to every thread: {}", std::strerror(-rc));
    // libseccomp sets PR_SET_NO_NEW_PRIVS itself (SCMP_FLTATR_CTL_NNP).
    if (int rc = ::seccomp_load(ctx.get()); rc < 0) throw Error("seccomp: loading the filter: {}", std::strerror(-rc));
}

void seccomp_test_probe() {
    const char* probe = std::getenv("XOVER_TEST_SECCOMP_PROBE");
    if (!probe || std::string_view(probe) != "1") return;
    // acct(2): process accounting, which nothing here ever needs.
    [[maybe_unused]] long rc = ::syscall(SYS_acct, nullptr);
}

}  // namespace xover::vmm
