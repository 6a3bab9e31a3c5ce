#include "xover/vmm/seccomp.hpp"

#include <sched.h>
#include <seccomp.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
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

// What each kind of thread never does, left out of its own filter
// (vmm/seccomp.hpp: ThreadKind). Everything else its process allows.
//
// vCPU threads run the guest's register writes first-hand: a device model
// bug reached from there must not reach sockets, the broker's credentials,
// the event loop's ring, or new threads. Connections (stream and vhost-user
// reconnects, the broker) are all made on the I/O thread, from its timers
// and posted work.
constexpr Allowed kNeverOnVcpu[] = {
    {"socket", "sockets are made on the I/O thread (reconnects) and by the control API"},
    {"connect", "reconnects run on the I/O thread's timers"},
    {"accept", "the control API's listening thread accepts"},
    {"accept4", "stream-listen and vhost-user server sockets accept on the I/O thread"},
    {"getpeername", "the control API's"},
    {"getsockname", "the control API's"},
    {"getsockopt", "a connect's result and a broker's credentials are read on the I/O thread"},
    {"setsockopt", "a new connection's options are set on the I/O thread"},
    {"geteuid", "a restarted broker's directory is checked on the I/O thread"},
    {"unlink", "sockets go at exit, on the main thread"},
    {"io_uring_enter", "only the I/O thread enters its ring (vmm/event_loop.cpp)"},
    {"signalfd4", "the I/O thread's"},
    {"sched_setattr", "the I/O thread's, set before its filter"},
    {"prctl", "thread names are set before the filter"},
    {"clone", "a vCPU thread starts no thread"},
};

// The I/O thread: all the VM's run-time work but the control API's.
constexpr Allowed kNeverOnIo[] = {
    {"accept", "the control API's listening thread accepts"},
    {"getpeername", "the control API's"},
    {"getsockname", "the control API's"},
    {"sched_setattr", "its short time slice is set before its filter"},
    {"prctl", "its name is set before its filter"},
    {"clone", "it starts no thread"},
};

// The control API's request handler: it reads requests from the socket
// and calls into the VM (pause, links, carrier: which may move frames, so
// the data plane's calls stay) or asks the broker.
constexpr Allowed kNeverOnApiWorker[] = {
    {"accept", "its listening thread accepts"},
    {"accept4", "its listening thread accepts"},
    {"io_uring_enter", "only the I/O thread enters its ring"},
    {"signalfd4", "the I/O thread's"},
    {"sched_setattr", "the I/O thread's"},
    {"prctl", "thread names are set before the filter"},
    {"clone", "it starts no thread"},
    {"unlink", "the API's socket goes at exit, on the main thread"},
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

// A filter being built: the allow-lists go in, less what the thread kind
// it is for never does.
class FilterBuilder {
public:
    FilterBuilder(SeccompMode mode, std::span<const Allowed> never)
        : ctx_(::seccomp_init(mode == SeccompMode::Kill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG), ::seccomp_release),
          never_(never) {
        if (!ctx_) throw Error("seccomp: cannot create a filter");
    }

    scmp_filter_ctx get() const { return ctx_.get(); }

    bool left_out(std::string_view name) const {
        for (const auto& n : never_)
            if (name == n.name) return true;
        return false;
    }

    void allow(const Allowed& a) {
        if (left_out(a.name)) return;
        allow_always(a);
    }

    template <std::size_t N>
    void allow_all(const Allowed (&list)[N]) {
        for (const auto& a : list) allow(a);
    }

    // Not subject to the kind's list (the sanitizer's needs).
    void allow_always(const Allowed& a) {
        int nr = ::seccomp_syscall_resolve_name(a.name);
        if (nr == __NR_SCMP_ERROR) return;  // not a syscall on this architecture
        if (int rc = ::seccomp_rule_add(ctx_.get(), SCMP_ACT_ALLOW, nr, 0); rc < 0 && rc != -EEXIST)
            throw Error("seccomp: allowing {}: {}", a.name, std::strerror(-rc));
    }

    // `name` when its arguments match `args` (`what` names the rule in errors).
    void allow_rule(const char* name, const char* what, std::initializer_list<scmp_arg_cmp> args) {
        if (left_out(name)) return;
        if (int rc = ::seccomp_rule_add_array(ctx_.get(), SCMP_ACT_ALLOW, ::seccomp_syscall_resolve_name(name),
                                              unsigned(args.size()), args.begin());
            rc < 0)
            throw Error("seccomp: allowing {}: {}", what, std::strerror(-rc));
    }

private:
    std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx_;
    std::span<const Allowed> never_;
};

// The profile's allow-list, less `never` (a thread kind's).
void add_profile(FilterBuilder& f, SeccompProfile profile) {
    f.allow_all(kCommon);
    // IPv4 and IPv6 sockets only: a stream backend reconnecting, and the
    // throwaway datagram socket that asks a tap's flags (SIOCGIFFLAGS).
    // Never a netlink or packet socket; a Unix one for the VM's broker only.
    for (int family : {AF_INET, AF_INET6})
        f.allow_rule("socket", "socket(AF_INET*)", {SCMP_A0(SCMP_CMP_EQ, unsigned(family))});
    // A Unix SOCK_SEQPACKET socket, the broker protocol's only kind: a VM
    // registering again with a restarted broker (VmAgent), the broker's
    // control API asking its own broker for the status.
    f.allow_rule("socket", "socket(AF_UNIX, SOCK_SEQPACKET)",
                 {SCMP_A0(SCMP_CMP_EQ, unsigned(AF_UNIX)), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_SEQPACKET)});
    if (profile != SeccompProfile::VhostUser) {
        // A thread loading its own, narrower filter (ThreadKind), which
        // can only take away: a plain SECCOMP_SET_MODE_FILTER, no flags
        // (no sync to other threads, no user-space listener).
        f.allow_rule("seccomp", "seccomp(SECCOMP_SET_MODE_FILTER, 0)",
                     {SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER), SCMP_A1(SCMP_CMP_EQ, 0)});
    }
    if (profile == SeccompProfile::Vmm) {
        f.allow_all(kVmm);
        // KVM's own ioctls only (KVM_RUN, KVM_IRQ_LINE, KVM_SIGNAL_MSI,
        // KVM_SET_USER_MEMORY_REGION for window remaps, KVM_IOEVENTFD and
        // KVM_IRQFD as queues start): their type byte is KVMIO. A tap is
        // set up before the filter; nothing else takes an ioctl at run
        // time but stdio asking whether an output is a terminal (TCGETS).
        f.allow_rule("ioctl", "ioctl(KVMIO)", {SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, KVMIO << 8)});
        f.allow_rule("ioctl", "ioctl(TCGETS)", {SCMP_A1(SCMP_CMP_EQ, TCGETS)});
        // A Unix stream socket: a NIC on a vhost-user back-end connecting
        // to it again after it went away.
        f.allow_rule("socket", "socket(AF_UNIX, SOCK_STREAM)",
                     {SCMP_A0(SCMP_CMP_EQ, unsigned(AF_UNIX)), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM)});
        // The I/O and vCPU threads start after the filter is loaded: clone
        // with CLONE_THREAD only (a thread, never a process). clone3's
        // flags are behind a pointer the filter cannot read, so it fails
        // with ENOSYS and glibc falls back to clone.
        f.allow_rule("clone", "clone(CLONE_THREAD)", {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)});
        if (int rc = ::seccomp_rule_add(f.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0); rc < 0)
            throw Error("seccomp: clone3 -> ENOSYS: {}", std::strerror(-rc));
    } else if (profile == SeccompProfile::VhostUser) {
        f.allow_all(kVhostUser);
    } else {
        f.allow_all(kBroker);
        // SIOCGIFFLAGS only: the uplink tap's carrier, for status.
        f.allow_rule("ioctl", "ioctl(SIOCGIFFLAGS)", {SCMP_A1(SCMP_CMP_EQ, SIOCGIFFLAGS)});
    }
#if defined(__SANITIZE_ADDRESS__)
    for (const auto& a : kSanitizer) f.allow_always(a);
#endif
}

std::span<const Allowed> never_on(ThreadKind kind) {
    switch (kind) {
    case ThreadKind::Vcpu: return kNeverOnVcpu;
    case ThreadKind::Io: return kNeverOnIo;
    case ThreadKind::ApiWorker: return kNeverOnApiWorker;
    }
    return {};
}

void load(FilterBuilder& f) {
    // libseccomp sets PR_SET_NO_NEW_PRIVS itself (SCMP_FLTATR_CTL_NNP).
    if (int rc = ::seccomp_load(f.get()); rc < 0) throw Error("seccomp: loading the filter: {}", std::strerror(-rc));
}

std::atomic<bool> g_process_filter_loaded{false};

const char* probe_setting() { return std::getenv("XOVER_TEST_SECCOMP_PROBE"); }

// With XOVER_TEST_SECCOMP_PROBE set to the kind's name: a syscall its
// process allows and that kind of thread does not.
void seccomp_thread_test_probe(ThreadKind kind) {
    const char* probe = probe_setting();
    static constexpr const char* kNames[] = {"vcpu", "io", "api"};
    if (!probe || std::string_view(probe) != kNames[unsigned(kind)]) return;
    // accept(-1): its process allows accept (the control API's listening
    // thread), and none of these kinds of thread accepts.
    [[maybe_unused]] long rc = ::syscall(SYS_accept, -1, nullptr, nullptr);
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
    FilterBuilder f(mode, {});
    add_profile(f, profile);
    // Every thread of the process gets the filter, those started before it
    // too: the control API's (api/api_server.hpp) start before it is loaded.
    if (int rc = ::seccomp_attr_set(f.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc < 0)
        throw Error("seccomp: syncing the filter to every thread: {}", std::strerror(-rc));
    load(f);
    g_process_filter_loaded.store(true, std::memory_order_release);
}

bool apply_thread_seccomp(SeccompMode mode, SeccompProfile profile, ThreadKind kind) {
    if (mode == SeccompMode::Off) {
        seccomp_thread_test_probe(kind);
        return true;
    }
    if (!g_process_filter_loaded.load(std::memory_order_acquire)) return false;
    FilterBuilder f(mode, never_on(kind));
    add_profile(f, profile);
    // The process's filter set PR_SET_NO_NEW_PRIVS on every thread; the
    // prctl again would be a syscall the process's filter may forbid.
    if (int rc = ::seccomp_attr_set(f.get(), SCMP_FLTATR_CTL_NNP, 0); rc < 0)
        throw Error("seccomp: a thread's filter without setting no_new_privs again: {}", std::strerror(-rc));
    load(f);
    seccomp_thread_test_probe(kind);
    return true;
}

void seccomp_test_probe() {
    const char* probe = probe_setting();
    if (!probe || std::string_view(probe) != "1") return;
    // acct(2): process accounting, which nothing here ever needs.
    [[maybe_unused]] long rc = ::syscall(SYS_acct, nullptr);
}

}  // namespace xover::vmm
