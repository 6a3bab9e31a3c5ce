// The event loop's io_uring takes only the operations it uses
// (vmm/restricted_ring.hpp): what seccomp cannot see, the ring refuses.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "xover/vmm/restricted_ring.hpp"

using namespace xover::vmm;

namespace {

struct Ring {
    io_uring ring{};
    Ring() { init_restricted_ring(ring, 8, {IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE}); }
    ~Ring() { io_uring_queue_exit(&ring); }

    // Submits one prepared SQE and returns its completion's result.
    template <typename Prep>
    int run(Prep prep) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        REQUIRE(sqe != nullptr);
        prep(sqe);
        REQUIRE(io_uring_submit(&ring) == 1);
        io_uring_cqe* cqe = nullptr;
        REQUIRE(io_uring_wait_cqe(&ring, &cqe) == 0);
        int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        return res;
    }
};

}  // namespace

TEST_CASE("restricted ring: a poll runs, opening a file, a no-op or a read is refused", "[event-loop]") {
    Ring r;
    int efd = ::eventfd(1, EFD_CLOEXEC);  // readable
    REQUIRE(efd >= 0);
    CHECK(r.run([&](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, efd, POLLIN); }) & POLLIN);
    CHECK(r.run([](io_uring_sqe* sqe) { io_uring_prep_openat(sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0); }) ==
          -EACCES);
    CHECK(r.run([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); }) == -EACCES);
    char byte;
    CHECK(r.run([&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, efd, &byte, 1, 0); }) == -EACCES);
    ::close(efd);
}

TEST_CASE("restricted ring: no registration (buffers, files, more restrictions) once enabled", "[event-loop]") {
    Ring r;
    char buffer[64];
    iovec iov{buffer, sizeof buffer};
    CHECK(io_uring_register_buffers(&r.ring, &iov, 1) == -EACCES);
    int fd = ::eventfd(0, EFD_CLOEXEC);
    CHECK(io_uring_register_files(&r.ring, &fd, 1) == -EACCES);
    ::close(fd);
}
