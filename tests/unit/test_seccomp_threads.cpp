// Per-thread seccomp filters (vmm/seccomp.hpp: ThreadKind), stacked on the
// process's: each case runs in a forked child that loads the VMM's or the
// broker's filter under kill, starts a thread of one kind, and makes one
// syscall. Allowed, the child exits 0; forbidden, SIGSYS kills it.
#include <catch2/catch.hpp>

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <mutex>
#include <thread>

#include "xover/vmm/seccomp.hpp"

using namespace xover::vmm;

namespace {

// How a child that ran `body` ended: its exit status, or -SIGNAL.
int in_child(const std::function<void()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        try {
            body();
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

// A child with `profile`'s process filter (kill), running `syscall_of` on
// a thread of `kind` once that thread loaded its own filter.
int thread_makes(SeccompProfile profile, ThreadKind kind, const std::function<void()>& syscall_of) {
    return in_child([&] {
        apply_seccomp(SeccompMode::Kill, profile);
        int status = 0;
        std::thread t([&] {
            if (!apply_thread_seccomp(SeccompMode::Kill, profile, kind)) {
                status = 4;
                return;
            }
            // What every kind of thread does all the time: locks, memory, eventfds, time.
            static std::mutex m;
            { std::lock_guard lock(m); }
            void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            ::munmap(page, 4096);
            std::uint64_t one = 1;
            int efd = profile == SeccompProfile::Vmm ? ::eventfd(0, 0) : -1;  // a VMM's queues starting
            if (efd >= 0) {
                [[maybe_unused]] auto n = ::write(efd, &one, sizeof one);
                ::close(efd);
            }
            syscall_of();
        });
        t.join();
        if (status != 0) ::_exit(status);
    });
}

void make_udp_socket() {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd >= 0) ::close(fd);
}

}  // namespace

TEST_CASE("seccomp threads: a vCPU thread may not make a socket that its VMM may", "[seccomp]") {
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Io, make_udp_socket) == 0);
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Vcpu, make_udp_socket) == -SIGSYS);
}

TEST_CASE("seccomp threads: no thread kind accepts connections (the API's listening thread does)", "[seccomp]") {
    auto accept_one = [] { ::accept(-1, nullptr, nullptr); };
    for (ThreadKind kind : {ThreadKind::Vcpu, ThreadKind::Io, ThreadKind::ApiWorker})
        CHECK(thread_makes(SeccompProfile::Vmm, kind, accept_one) == -SIGSYS);
    CHECK(thread_makes(SeccompProfile::Broker, ThreadKind::ApiWorker, accept_one) == -SIGSYS);
}

TEST_CASE("seccomp threads: the VMM's ioctls are KVM's own, and a terminal query", "[seccomp]") {
    // On fd -1 each fails with EBADF: what counts is that the filter lets it through.
    auto kvm_ioctl = [] { ::ioctl(-1, KVM_GET_API_VERSION, 0); };
    auto kvm_run = [] { ::ioctl(-1, KVM_RUN, 0); };
    auto terminal = [] { ::ioctl(-1, TCGETS, nullptr); };
    auto tun = [] { ::ioctl(-1, TUNSETIFF, nullptr); };
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Vcpu, kvm_ioctl) == 0);
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Vcpu, kvm_run) == 0);
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Io, terminal) == 0);
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Io, tun) == -SIGSYS);
    CHECK(in_child([&] {
              apply_seccomp(SeccompMode::Kill, SeccompProfile::Vmm);
              tun();
          }) == -SIGSYS);
}

TEST_CASE("seccomp threads: a vCPU thread starts no thread, the I/O thread enters no new ring", "[seccomp]") {
    auto start_thread = [] { std::thread([] {}).join(); };
#if !defined(__SANITIZE_ADDRESS__)  // there, LeakSanitizer's tracer keeps clone allowed for every thread
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Vcpu, start_thread) == -SIGSYS);
#else
    (void)start_thread;
#endif
    auto uring_setup = [] { ::syscall(SYS_io_uring_setup, 4, nullptr); };
    CHECK(thread_makes(SeccompProfile::Vmm, ThreadKind::Io, uring_setup) == -SIGSYS);
}

TEST_CASE("seccomp threads: a thread's filter waits for the process's, log and off kill nothing", "[seccomp]") {
    CHECK(in_child([] {
              if (apply_thread_seccomp(SeccompMode::Kill, SeccompProfile::Vmm, ThreadKind::Vcpu)) ::_exit(5);
          }) == 0);
    CHECK(in_child([] {
              apply_seccomp(SeccompMode::Off, SeccompProfile::Vmm);
              std::thread([] {
                  if (!apply_thread_seccomp(SeccompMode::Off, SeccompProfile::Vmm, ThreadKind::Vcpu)) ::_exit(6);
                  make_udp_socket();
              }).join();
          }) == 0);
}
