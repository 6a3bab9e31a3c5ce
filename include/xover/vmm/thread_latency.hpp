// Scheduling hints for xover's own threads.
#pragma once

#include <cstdint>

namespace xover::vmm {

// Asks the kernel's fair scheduler (EEVDF, Linux 6.12+) for a short time
// slice for the calling thread: a woken thread with a short slice gets an
// earlier deadline, so it preempts a CPU-bound thread at once instead of
// waiting for that thread's slice to run out. The I/O thread wants this:
// it wakes for an ioeventfd, a timer or a peer's doorbell, works for some
// microseconds and sleeps, while polling vCPUs hold every core. Its share
// of CPU time does not change. Measured on this project's 2-core host, a
// virtio-net crossover round trip with ioeventfds: 140-160 us median and
// 3-4 ms p99 without, 67-70 us and 0.2 ms with. Returns false where the
// kernel refuses (the thread keeps the default slice). (No <chrono> here:
// thread_latency.cpp must not see glibc's <sched.h>.)
bool request_short_slice(std::uint64_t slice_ns);

// The calling thread's requested slice (0: the default), or -1 when the
// kernel cannot tell.
long current_slice_ns();

}  // namespace xover::vmm
