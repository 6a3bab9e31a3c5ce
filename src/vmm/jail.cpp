#include "xover/vmm/jail.hpp"

#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <vector>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"

namespace xover::vmm {

namespace {

std::optional<uid_t> g_jail_user;

std::optional<std::uint32_t> parse_id(std::string_view text) {
    std::uint32_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// A uid and its user's primary group (if /etc/passwd knows the user).
struct User {
    uid_t uid;
    std::optional<gid_t> primary_group;
};

User resolve_user(std::string_view text) {
    std::string name(text);
    const passwd* pw = nullptr;
    if (auto id = parse_id(text)) {
        pw = ::getpwuid(*id);
        return {uid_t(*id), pw ? std::optional<gid_t>(pw->pw_gid) : std::nullopt};
    }
    pw = ::getpwnam(name.c_str());
    if (!pw) throw Error("--uid: no user named \"{}\" (give a name from /etc/passwd or a number)", name);
    return {pw->pw_uid, pw->pw_gid};
}

gid_t resolve_group(std::string_view text) {
    if (auto id = parse_id(text)) return gid_t(*id);
    std::string name(text);
    const group* gr = ::getgrnam(name.c_str());
    if (!gr) throw Error("--gid: no group named \"{}\" (give a name from /etc/group or a number)", name);
    return gr->gr_gid;
}

void parse_namespaces(std::string_view list, JailOptions& jail) {
    while (!list.empty()) {
        auto comma = list.find(',');
        std::string_view name = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        if (name == "mount") jail.mount_namespace = true;
        else if (name == "pid") jail.pid_namespace = true;
        else if (name == "net") jail.net_namespace = true;
        else throw Error("--namespaces: \"{}\" is not a namespace xover makes (use mount, pid and net, comma-separated)", name);
    }
}

// The child's exit, as the parent's: its status, or 128+N for signal N (what a shell reports).
[[noreturn]] void exit_like(int status) {
    std::fflush(nullptr);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

}  // namespace

JailOptions parse_jail_options(const JailFlags& flags) {
    const std::string_view uid = flags.uid, gid = flags.gid, chroot = flags.chroot;
    JailOptions jail;
    std::optional<gid_t> primary_group;
    if (!uid.empty()) {
        User user = resolve_user(uid);
        jail.uid = user.uid;
        primary_group = user.primary_group;
    }
    if (!gid.empty()) jail.gid = resolve_group(gid);
    else if (jail.uid && primary_group) jail.gid = primary_group;
    else if (jail.uid) throw Error("--uid {}: that user has no entry in /etc/passwd; give its group with --gid", uid);
    if (!chroot.empty()) {
        std::error_code ec;
        jail.chroot = std::filesystem::absolute(std::filesystem::path(chroot), ec);
        if (ec || !std::filesystem::is_directory(jail.chroot, ec))
            throw Error("--chroot: {} is not a directory (the jail's root must exist)", std::string(chroot));
        // The jail makes directories in it as root before it enters: a
        // root another user can write to could lead them elsewhere (a
        // planted symlink).
        struct stat st{};
        if (::stat(jail.chroot.c_str(), &st) != 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
            throw Error("--chroot: {} must belong to root and be writable by root only (mode {:o}, owner uid {})",
                        jail.chroot.string(), st.st_mode & 07777, st.st_uid);
        jail.mount_namespace = true;
    }
    parse_namespaces(flags.namespaces, jail);
    if (jail.any() && ::geteuid() != 0)
        throw Error("--uid, --gid, --chroot and --namespaces need root (they make namespaces, chroot and change "
                    "user); this is uid {}",
                    ::geteuid());
    g_jail_user = jail.uid;
    return jail;
}

std::optional<uid_t> jail_user() { return g_jail_user; }

void enter_pid_namespace(const JailOptions& jail) {
    if (!jail.pid_namespace) return;
    // Blocked before the fork, so that none is lost in between: the parent
    // takes them with sigwaitinfo, the child unblocks them.
    sigset_t passed, old;
    sigemptyset(&passed);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&passed, sig);
    if (::pthread_sigmask(SIG_BLOCK, &passed, &old) != 0) throw Error("cannot block signals");
    if (::unshare(CLONE_NEWPID) != 0) throw system_error("unshare(CLONE_NEWPID) (--namespaces pid)");
    std::fflush(nullptr);
    pid_t child = ::fork();
    if (child < 0) throw system_error("fork (into the new pid namespace)");
    if (child == 0) {
        // Pid 1 of its namespace: it goes when its parent goes.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return;
    }
    // The parent only waits: it holds nothing of the VM.
    for (;;) {
        siginfo_t info{};
        int sig = ::sigwaitinfo(&passed, &info);
        if (sig < 0) continue;  // EINTR
        if (sig != SIGCHLD) {
            ::kill(child, sig);
            continue;
        }
        int status = 0;
        if (::waitpid(child, &status, WNOHANG) == child) exit_like(status);
    }
}

void enter_jail(const JailOptions& jail, std::span<const std::filesystem::path> keep_dirs,
                std::span<const std::filesystem::path> own_sockets) {
    int flags = (jail.mount_namespace ? CLONE_NEWNS : 0) | (jail.net_namespace ? CLONE_NEWNET : 0);
    if (flags && ::unshare(flags) != 0) throw system_error("unshare (the jail's mount and network namespaces)");
    if (jail.mount_namespace) {
        // Nothing mounted from here on reaches the host's namespace.
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            throw system_error("making the jail's mounts private");
    }
    if (!jail.chroot.empty()) {
        for (const auto& dir : keep_dirs) {
            // The path as the process will use it (not resolved: through a
            // symlink such as /var/run it must still lead there inside).
            std::error_code ec;
            auto source = std::filesystem::absolute(dir, ec).lexically_normal();
            if (ec || !std::filesystem::is_directory(source, ec)) continue;  // nothing there to keep
            auto target = jail.chroot / source.relative_path();
            std::filesystem::create_directories(target, ec);
            if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
                throw system_error(fmt::format("bind-mounting {} into the jail at {}", source.string(), target.string()));
        }
#if defined(__SANITIZE_ADDRESS__)
        // LeakSanitizer reads /proc at exit (its threads, its maps): in
        // sanitizer builds only, the jail gets one, of its own pid
        // namespace if it has one.
        auto proc = jail.chroot / "proc";
        std::error_code proc_ec;
        std::filesystem::create_directories(proc, proc_ec);
        if (jail.pid_namespace ? ::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr)
                               : ::mount("/proc", proc.c_str(), nullptr, MS_BIND | MS_REC, nullptr))
            throw system_error("mounting /proc in the jail (sanitizer build)");
#endif
        // The working directory's path again inside, where it exists: a
        // relative socket path given on the command line still leads to
        // its kept directory.
        std::error_code cwd_ec;
        const auto cwd = std::filesystem::current_path(cwd_ec);
        if (::chroot(jail.chroot.c_str()) != 0) throw system_error(fmt::format("chroot {}", jail.chroot.string()));
        if ((cwd_ec || ::chdir(cwd.c_str()) != 0) && ::chdir("/") != 0) throw system_error("chdir / in the jail");
    }
    if (jail.uid) {
        // Its own sockets stay its own: the broker's API asks the broker
        // on its socket, and a jailed user must be able to connect there.
        for (const auto& socket : own_sockets)
            if (::chown(socket.c_str(), *jail.uid, jail.gid.value_or(gid_t(-1))) != 0 && errno != ENOENT)
                throw system_error(fmt::format("handing {} to uid {}", socket.string(), *jail.uid));
    }
    // Groups first: once the uid is dropped, it may not change them.
    if (jail.gid || jail.uid) {
        if (::setgroups(0, nullptr) != 0) throw system_error("setgroups (dropping supplementary groups)");
    }
    if (jail.gid && ::setresgid(*jail.gid, *jail.gid, *jail.gid) != 0)
        throw system_error(fmt::format("setresgid {}", *jail.gid));
    if (jail.uid && ::setresuid(*jail.uid, *jail.uid, *jail.uid) != 0)
        throw system_error(fmt::format("setresuid {}", *jail.uid));
    // A root the jail's user cannot enter would fail later, at the first path.
    if (!jail.chroot.empty() && jail.uid && ::access("/", X_OK) != 0)
        throw Error("--chroot {}: uid {} cannot enter it (chmod 755 it, or give it to that user)",
                    jail.chroot.string(), *jail.uid);
    if (jail.any())
        spdlog::info("jail: uid {} gid {}, root {}{}{}{}", ::geteuid(), ::getegid(),
                     jail.chroot.empty() ? std::string("/") : jail.chroot.string(),
                     jail.pid_namespace ? ", own pid namespace" : "", jail.mount_namespace ? ", own mounts" : "",
                     jail.net_namespace ? ", own network namespace" : "");
}

}  // namespace xover::vmm
