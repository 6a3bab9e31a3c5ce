// Cross-process locks that know their holder (nic/owned_lock.hpp): a dead
// holder's lock is recovered, a live one's never taken, and a crossover
// sender whose peer's ring is locked by a live producer keeps its frames
// (lossless) instead of dropping them.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "crossover_fakes.hpp"
#include "crossover_sender.hpp"
#include "xover/nic/owned_lock.hpp"

using namespace xover;
using namespace xover::test;

namespace {

// A child that lives until killed (SIGKILL: dies like a crashed VMM).
struct ChildProcess {
    pid_t pid = ::fork();
    ChildProcess() {
        if (pid == 0) {
            ::pause();
            ::_exit(0);
        }
        REQUIRE(pid > 0);
    }
    void kill_without_reaping() { ::kill(pid, SIGKILL); wait_exited(); }
    void reap() {
        if (pid > 0) ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    ~ChildProcess() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            reap();
        }
    }
    std::uint64_t token() const { return (std::uint64_t(std::uint32_t(pid)) << 32) | 0x1234; }

private:
    // Exited but not reaped: a zombie (siginfo without WNOWAIT would reap).
    void wait_exited() {
        siginfo_t info{};
        REQUIRE(::waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == 0);
    }
};

const net::MacAddress kPeer{{0x52, 0x54, 0x00, 0x77, 0x00, 0x01}};

}  // namespace

TEST_CASE("owned lock: the word names its holder; only a free lock is taken", "[shared-state]") {
    nic::OwnedLock lock;
    REQUIRE(lock.try_lock());
    CHECK(nic::lock_token_pid(lock.holder()) == ::getpid());
    CHECK_FALSE(lock.try_lock());
    CHECK_FALSE(lock.try_lock_briefly());   // held by this very process: alive
    CHECK_FALSE(lock.recover_if_abandoned());
    lock.unlock();
    CHECK(lock.holder() == 0);
    CHECK(lock.try_lock_briefly());
}

TEST_CASE("owned lock: a holder that exited is recovered, reaped or still a zombie", "[shared-state]") {
    nic::OwnedLock lock;
    ChildProcess child;
    lock.word.store(child.token());
    CHECK_FALSE(lock.try_lock_briefly());  // alive: never displaced
    CHECK(lock.holder() == child.token());
    child.kill_without_reaping();          // a zombie has exited
    CHECK(nic::process_gone(child.pid));
    CHECK(lock.try_lock_briefly());
    CHECK(nic::lock_token_pid(lock.holder()) == ::getpid());
    lock.unlock();

    child.reap();
    pid_t gone = 0;
    {
        ChildProcess other;
        gone = other.pid;
    }  // killed and reaped: the pid names nobody now
    lock.word.store((std::uint64_t(std::uint32_t(gone)) << 32) | 7);
    CHECK(lock.try_lock_briefly());
}

TEST_CASE("owned lock: a word naming no process (a peer's garbage) is recovered", "[shared-state]") {
    nic::OwnedLock lock;
    for (std::uint64_t garbage : {std::uint64_t(1), std::uint64_t(0xffffffff00000000ull), std::uint64_t(0x8000000000000001ull)}) {
        lock.word.store(garbage);
        CHECK(lock.try_lock_briefly());
        lock.unlock();
    }
}

TEST_CASE("owned lock: a forked child has a token of its own", "[shared-state]") {
    std::uint64_t parent = nic::own_lock_token();
    pid_t pid = ::fork();
    if (pid == 0) {
        std::uint64_t mine = nic::own_lock_token();
        ::_exit(mine != parent && nic::lock_token_pid(mine) == ::getpid() ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("crossover: a peer ring locked by a live producer makes frames wait; a dead holder's lock is recovered",
          "[shared-state]") {
    Sender a;
    E1000Receiver b{kPeer};
    RxRing rx(b, 8);
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kPeer, "e1000", b.memory, b.port.page(), irq));
    nic::OwnedLock& lock = b.port.page().state().producer_lock;

    ChildProcess holder;  // a peer process in the middle of a batch, descheduled
    lock.word.store(holder.token());
    auto frame = ethernet(kPeer, kNicMac, 0x0800, 100);
    for (int i = 0; i < 3; ++i) a.tx.legacy(frame);
    a.tx.kick();
    CHECK(b.rd(e1000::reg::RDH) == 0);
    CHECK(a.counter("xover_busy_peer_locked") >= 1);
    CHECK(a.counter("xover_tx_frames") == 0);
    CHECK(a.counter("xover_dropped_peer_locked") == 0);
    CHECK(lock.holder() == holder.token());  // never taken from a live holder

    holder.kill_without_reaping();  // it dies holding the lock
    a.rig.nic.resume_tx();          // the retry timer
    CHECK(b.rd(e1000::reg::RDH) == 3);
    CHECK(a.counter("xover_tx_frames") == 3);
    for (int i = 0; i < 3; ++i) CHECK(rx.frame(i) == frame);
    CHECK(lock.holder() == 0);
    ::close(irq);
}

namespace {
// Records the owner's requests for a later retry_rx().
struct RetryPort final : FakeNicPort {
    RetryPort() : FakeNicPort("retry-test", 0) {}
    int retries = 0;
    void retry_rx_later(std::chrono::milliseconds) override { ++retries; }
};
}  // namespace

TEST_CASE("crossover: a backend frame never waits for a peer holding the RX ring; the backend keeps it",
          "[shared-state]") {
    E1000Rig rig;
    RetryPort port;
    rig.nic.attach_crossover(port);
    RxRing rx(rig, 8);
    nic::OwnedLock& lock = port.page.state().producer_lock;
    ChildProcess holder;  // a peer in the middle of a batch
    lock.word.store(holder.token());
    auto frame = ethernet(kNicMac, kPeer, 0x0800, 100);

    CHECK_FALSE(rig.nic.deliver(frame));  // not taken: the backend holds it
    CHECK(rig.counter("rx_ring_locked") == 1);
    CHECK(rig.counter("rx_dropped_no_buffer") == 0);
    CHECK(port.retries == 1);
    auto calls = rig.backend.rx_space_calls;
    rig.nic.retry_rx();
    CHECK(rig.backend.rx_space_calls == calls + 1);  // asked to deliver again
    rig.nic.retry_rx();
    CHECK(rig.backend.rx_space_calls == calls + 1);  // once per put-off delivery

    lock.word.store(0);  // the batch ended
    CHECK(rig.nic.deliver(frame));
    CHECK(rx.frame(0) == frame);
}
