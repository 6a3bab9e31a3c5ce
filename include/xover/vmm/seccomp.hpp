// The process's seccomp-bpf filter (libseccomp), loaded once set-up is
// done, as Firecracker and Cloud Hypervisor do: after it, the VMM can make
// only the syscalls its running devices need. It is loaded by the thread
// that then starts the I/O and vCPU threads (they inherit it), with
// PR_SET_NO_NEW_PRIVS, and applies to the whole process from then on.
//
// What each profile allows, and why, is listed in src/vmm/seccomp.cpp.
// Opening files, sockets, /dev/kvm, memfds, exec and fork are set-up only:
// a compromised VMM process cannot reach anything new.
#pragma once

#include "xover/vmm/config.hpp"

namespace xover::vmm {

enum class SeccompProfile {
    Vmm,     // `xover run` once its VM runs
    Broker,  // `xover broker` once it listens
    VhostUser,  // `xover vhost-user` once it listens
};

// Loads the profile's filter for every thread of the process (the ones
// started later inherit it); Off loads none. Throws xover::Error if it
// cannot be loaded.
void apply_seccomp(SeccompMode mode, SeccompProfile profile);

// The kinds of thread that get a narrower filter of their own, stacked on
// the process's (the kernel runs both; the stricter answer wins).
enum class ThreadKind {
    Vcpu,       // runs KVM_RUN and the devices' register handlers: guest input first-hand
    Io,         // the event loop: wake-ups, timers, the broker, reconnects
    ApiWorker,  // the control API's request handler (HTTP from the socket)
};

// Loads the kind's filter on the calling thread only: the process's
// allow-list without what that kind never does (each left out with why in
// src/vmm/seccomp.cpp). Needs the process's filter first (a thread that
// stacks its own cannot be synced to later). Returns false, loading
// nothing, while the process has none yet; true once loaded, or when mode
// is Off. Then runs the thread probe (seccomp_test_probe, below).
bool apply_thread_seccomp(SeccompMode mode, SeccompProfile profile, ThreadKind kind);

// Test-only hooks (the tests then expect SIGSYS under kill, and the
// process to go on under log or off); the filters are not weakened for them.
// With XOVER_TEST_SECCOMP_PROBE=1: one syscall no profile allows.
// (With =vcpu, io or api, apply_thread_seccomp makes one on that kind of
// thread that its process allows and the kind does not.)
void seccomp_test_probe();

}  // namespace xover::vmm
