// The optional jail, like Firecracker's jailer, but done by the process
// itself: fresh pid, mount and network namespaces, a chroot, and a drop to
// an unprivileged uid/gid. `xover run`, `xover broker` and `xover
// vhost-user` take it (--uid, --gid, --chroot, --namespaces).
//
// Two steps, because of what each can follow:
//   1. enter_pid_namespace(), first of all: a new pid namespace only holds
//      the children of whoever made it, so the process forks, and the child
//      (pid 1 there) goes on. It must come before /dev/kvm is opened: a KVM
//      VM belongs to the process (its mm) that created it.
//   2. enter_jail(), once set-up is done (/dev/kvm, memfds, taps, sockets
//      and files all open) and before any thread starts: the mount and
//      network namespaces, the chroot, the uid/gid drop. Then the seccomp
//      filter (vmm/seccomp.hpp) follows.
//
// A chroot keeps the directories the process still reaches by path: they
// are bind-mounted at their own path inside it, in the process's own mount
// namespace (a chroot always gets one), so a broker socket or an API
// socket means the same inside as outside. Nothing else of the host's
// filesystem is there.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace xover::vmm {

struct JailOptions {
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::filesystem::path chroot;  // empty: none
    bool pid_namespace = false;
    bool mount_namespace = false;  // implied by a chroot
    bool net_namespace = false;

    bool any() const { return uid || gid || !chroot.empty() || pid_namespace || mount_namespace || net_namespace; }
};

// The jail's flags as given (each empty when not given): `uid`/`gid` are
// numbers or user/group names (--gid defaults to the user's group);
// `namespaces` is a comma list of mount, pid and net.
struct JailFlags {
    std::string uid, gid, chroot, namespaces;
};

// Throws xover::Error naming the flag on a bad value, and when this user
// cannot make the jail (it needs root). Records the jail's user for
// jail_user(): the process's own jail, parsed once.
JailOptions parse_jail_options(const JailFlags& flags);

// Step 1: with a pid namespace, forks. The parent waits for the child,
// passes SIGINT, SIGTERM and SIGHUP on to it, and exits with its status;
// only the child returns. Without one, returns at once.
void enter_pid_namespace(const JailOptions& jail);

// Step 2 (see above). `keep_dirs` are the directories reached by path
// later (bind-mounted into the chroot); `own_sockets` are sockets this
// process made, which the jail's user must still reach (they are handed
// to it). A no-op without options.
void enter_jail(const JailOptions& jail, std::span<const std::filesystem::path> keep_dirs,
                std::span<const std::filesystem::path> own_sockets = {});

// The uid the process runs as once jailed (--uid), if any: a socket
// directory of that user is as trusted as one of this user's.
std::optional<uid_t> jail_user();

}  // namespace xover::vmm
