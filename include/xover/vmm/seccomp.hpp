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

// Loads the profile's filter for the calling thread and the threads it
// starts later; Off loads none. Throws xover::Error if it cannot be loaded.
void apply_seccomp(SeccompMode mode, SeccompProfile profile);

// Test-only hook: when the environment has XOVER_TEST_SECCOMP_PROBE=1, makes
// one syscall no profile allows (the test then expects SIGSYS under kill,
// and the process to go on under log or off).
void seccomp_test_probe();

}  // namespace xover::vmm
