// sched_setattr(2) and sched_getattr(2) have no glibc wrapper before 2.41:
// the raw syscalls with the kernel's own struct sched_attr. Its header
// clashes with glibc's <sched.h> (both define sched_param), so this file
// includes nothing that pulls <sched.h> in before it.
#include <linux/sched.h>
#include <linux/sched/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "xover/vmm/thread_latency.hpp"

namespace xover::vmm {

bool request_short_slice(std::uint64_t slice_ns) {
    sched_attr attr{};
    attr.size = sizeof attr;
    attr.sched_policy = SCHED_NORMAL;
    attr.sched_runtime = slice_ns;  // for fair tasks: the slice
    return ::syscall(SYS_sched_setattr, 0, &attr, 0u) == 0;
}

long current_slice_ns() {
    sched_attr attr{};
    if (::syscall(SYS_sched_getattr, 0, &attr, unsigned(sizeof attr), 0u) != 0) return -1;
    return long(attr.sched_runtime);
}

}  // namespace xover::vmm
