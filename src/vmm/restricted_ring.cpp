#include "xover/vmm/restricted_ring.hpp"

#include <vector>

#include "xover/error.hpp"

namespace xover::vmm {

void init_restricted_ring(io_uring& ring, unsigned entries, std::initializer_list<io_uring_op> ops) {
    if (int err = io_uring_queue_init(entries, &ring, IORING_SETUP_R_DISABLED); err < 0)
        throw system_error("io_uring_queue_init", -err);
    std::vector<io_uring_restriction> allowed(ops.size());
    std::size_t i = 0;
    for (io_uring_op op : ops) {
        allowed[i].opcode = IORING_RESTRICTION_SQE_OP;
        allowed[i].sqe_op = static_cast<__u8>(op);
        ++i;
    }
    // Through the raw register call: Debian 12's liburing 2.3 declares
    // io_uring_register_restrictions() and io_uring_enable_rings() but
    // does not export them.
    const unsigned fd = unsigned(ring.ring_fd);
    int err = io_uring_register(fd, IORING_REGISTER_RESTRICTIONS, allowed.data(), unsigned(allowed.size()));
    if (err == 0) err = io_uring_register(fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (err < 0) {
        io_uring_queue_exit(&ring);
        throw system_error("restricting the event loop's io_uring to its operations", -err);
    }
}

}  // namespace xover::vmm
