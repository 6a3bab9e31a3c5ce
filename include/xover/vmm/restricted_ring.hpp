// An io_uring that accepts only the operations its owner uses.
//
// seccomp cannot see inside a ring: an IORING_OP_OPENAT or IORING_OP_CONNECT
// submitted there would run with no filter asking. So the ring is created
// disabled, restricted to a list of SQE opcodes and to no registration
// operation at all, and only then enabled (io_uring_register(2),
// IORING_REGISTER_RESTRICTIONS). Any other opcode completes with -EACCES.
#pragma once

#include <liburing.h>

#include <initializer_list>

namespace xover::vmm {

// io_uring_queue_init(entries, ring) restricted to `ops` (IORING_OP_*).
// Throws xover::Error (the ring is not left open) if the kernel refuses.
void init_restricted_ring(io_uring& ring, unsigned entries, std::initializer_list<io_uring_op> ops);

}  // namespace xover::vmm
