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
#include "virtio_fakes.hpp"
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

TEST_CASE("owned lock: the word names its holder, only a free lock is taken", "[shared-state]") {
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

TEST_CASE("crossover: a peer ring locked by a live producer makes frames wait, a dead holder's lock is recovered",
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
    explicit RetryPort(nic::ModelId model = nic::ModelId::E1000)
        : FakeNicPort("retry-test", static_cast<std::uint32_t>(model)) {}
    int retries = 0;
    int space_returned = 0;
    void retry_later(std::chrono::milliseconds) override { ++retries; }
    OwnRx rx_space_returned() override {
        ++space_returned;
        return OwnRx::None;
    }
};
}  // namespace

TEST_CASE("crossover: a backend frame never waits for a peer holding the RX ring, the backend keeps it",
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

// The owner's RX changes (nic/rx_change.hpp): never a wait for the lock's
// holder, applied by that holder at its release, at most once, never after
// a newer change.
TEST_CASE("RX change: posted while a producer holds the lock, applied at its release, once", "[shared-state]") {
    crossover::SharedStatePage page = crossover::SharedStatePage::create("rx-change", 0);
    nic::SharedNicState& s = page.state();
    nic::RxRing a{.kind = nic::RxRingKind::E1000Legacy, .ring_gpa = 0x20000, .ring_entries = 8, .buffer_size = 2048};

    REQUIRE(s.try_lock_producer());  // a producer's batch (ours: never recovered from ourselves)
    CHECK_FALSE(s.change_rx({.ring = a, .enabled = true}));  // posted, no wait
    CHECK_FALSE(s.change_rx({.rdh = 5}));                    // added to it
    nic::RxRing seen;
    REQUIRE(s.read_rx_ring(seen));
    CHECK(seen.kind == nic::RxRingKind::None);  // the batch in flight keeps the old ring
    CHECK(s.load_rdh() == 0);
    CHECK(s.owner_rdh() == 5);  // the guest reads back what it wrote
    CHECK(s.rx_change_posted());
    s.unlock_producer();  // the holder applies it
    CHECK_FALSE(s.rx_change_posted());
    REQUIRE(s.read_rx_ring(seen));
    CHECK(seen.kind == nic::RxRingKind::E1000Legacy);
    CHECK(seen.ring_gpa == 0x20000);
    CHECK(seen.ring_entries == 8);
    CHECK(s.load_rdh() == 5);
    CHECK(s.link_flags.load() & nic::kOwnerRxEnabled);

    // Applied once: a later change does not carry the old RDH along, so a
    // producer's progress since is kept.
    REQUIRE(s.try_lock_producer());
    s.publish_rdh(7);  // the batch placed two frames
    CHECK_FALSE(s.change_rx({.enabled = false}));
    s.unlock_producer();
    CHECK(s.load_rdh() == 7);
    CHECK_FALSE(s.link_flags.load() & nic::kOwnerRxEnabled);

    // With the lock free the change is made at once.
    CHECK(s.change_rx({.rdh = 1}));
    CHECK(s.load_rdh() == 1);
}

TEST_CASE("RX change: the e1000 owner never waits for a live peer holding its ring, retry_rx settles it",
          "[shared-state]") {
    E1000Rig rig;
    RetryPort port;
    rig.nic.attach_crossover(port);
    nic::SharedNicState& s = port.page.state();
    nic::OwnedLock& lock = s.producer_lock;
    ChildProcess holder;  // a peer stopped in the middle of a batch
    lock.word.store(holder.token());

    RxRing rx(rig, 8);  // RDBA, RDLEN, RDH, RDT, RCTL.EN written while it holds the ring
    nic::RxRing seen;
    REQUIRE(s.read_rx_ring(seen));
    CHECK(seen.ring_entries == 0);  // the ring at attach: posted, not published behind the holder's back
    CHECK_FALSE(s.link_flags.load() & nic::kOwnerRxEnabled);
    CHECK(lock.holder() == holder.token());  // never taken from a live holder
    CHECK(port.retries >= 1);                // retry_rx() is due
    rig.wr(e1000::reg::RDH, 3);
    CHECK(rig.rd(e1000::reg::RDH) == 3);  // reads back what the guest wrote

    rig.nic.retry_rx();  // still held: another retry
    CHECK(s.rx_change_posted());
    int returned = port.space_returned;

    lock.word.store(0);  // the holder's batch ended (a holder that applies it is the test above)
    rig.nic.retry_rx();
    CHECK_FALSE(s.rx_change_posted());
    REQUIRE(s.read_rx_ring(seen));
    CHECK(seen.kind == nic::RxRingKind::E1000Legacy);
    CHECK(seen.ring_gpa == 0x20000);
    CHECK(seen.ring_entries == 8);
    CHECK(s.load_rdh() == 3);
    CHECK(s.link_flags.load() & nic::kOwnerRxEnabled);
    CHECK(port.space_returned == returned + 1);  // producers that found the old ring are woken
}

TEST_CASE("RX change: a virtio-net RX queue going live while a live peer holds the ring is posted, then settled",
          "[shared-state]") {
    VirtioNetRig rig;
    RetryPort port(nic::ModelId::VirtioNet);
    rig.net.attach_crossover(port);
    nic::SharedNicState& s = port.page.state();
    ChildProcess holder;  // a peer stopped in the middle of a batch
    s.producer_lock.word.store(holder.token());

    rig.bring_up();  // DRIVER_OK: the RX queue goes live
    nic::RxRing seen;
    REQUIRE(s.read_rx_ring(seen));
    CHECK(seen.kind == nic::RxRingKind::None);  // posted, not published behind the holder's back
    CHECK_FALSE(s.link_flags.load() & nic::kOwnerRxEnabled);
    CHECK(s.producer_lock.holder() == holder.token());
    CHECK(port.retries >= 1);
    rig.net.retry_rx();  // still held
    CHECK(s.rx_change_posted());

    int returned = port.space_returned;
    s.producer_lock.word.store(0);
    rig.net.retry_rx();
    CHECK_FALSE(s.rx_change_posted());
    REQUIRE(s.read_rx_ring(seen));
    CHECK(seen.kind == nic::RxRingKind::VirtioSplit);
    CHECK(seen.ring_gpa == rig.rx.layout().desc);
    CHECK(seen.used_gpa == rig.rx.layout().used);
    CHECK(seen.ring_entries == 16);
    CHECK(s.load_rdh() == 0);
    CHECK(s.link_flags.load() & nic::kOwnerRxEnabled);
    CHECK(port.space_returned == returned + 1);  // producers that found the queue off are woken
}

TEST_CASE("RX change: a producer's batches see whole descriptions, in order, while the owner changes them",
          "[shared-state]") {
    crossover::SharedStatePage page = crossover::SharedStatePage::create("rx-change-race", 0);
    nic::SharedNicState& s = page.state();
    constexpr std::uint32_t kChanges = 5000;
    auto ring = [](std::uint32_t i) {
        return nic::RxRing{.kind = nic::RxRingKind::E1000Legacy,
                           .ring_gpa = std::uint64_t(i) << 12,
                           .ring_entries = i,
                           .buffer_size = i * 2,
                           .features = i};
    };
    std::atomic<bool> done{false};
    std::atomic<int> torn{0}, backwards{0};
    std::atomic<std::uint64_t> batches{0}, spin{0};
    std::thread producer([&] {
        std::uint32_t last = 0;
        while (!done.load()) {
            if (!s.try_lock_producer_briefly()) continue;
            nic::RxRing r;
            if (s.read_rx_ring(r) && r.kind != nic::RxRingKind::None) {
                std::uint32_t i = r.ring_entries;
                if (r.ring_gpa != std::uint64_t(i) << 12 || r.buffer_size != i * 2 || r.features != i) ++torn;
                if (i < last) ++backwards;
                last = i;
            }
            s.publish_rdh(s.load_rdh() + 1);
            // A batch longer than the owner's short spin, so that changes
            // get posted (the owner's spin wins against short ones).
            for (int k = 0; k < 20000; ++k) spin.fetch_add(1, std::memory_order_relaxed);
            s.unlock_producer();
            ++batches;
        }
    });
    while (batches.load() == 0) std::this_thread::yield();
    for (std::uint32_t i = 1; i <= kChanges; ++i) {
        s.change_rx({.ring = ring(i)});  // most are posted: the batches outlast the owner's spin
        for (int k = 0; k < 1000; ++k) spin.fetch_add(1, std::memory_order_relaxed);  // the guest's other work
    }
    while (!s.settle_rx_change()) std::this_thread::yield();
    done.store(true);
    producer.join();
    CHECK(torn.load() == 0);
    CHECK(backwards.load() == 0);
    nic::RxRing last;
    REQUIRE(s.read_rx_ring(last));
    CHECK(last.ring_entries == kChanges);
    CHECK(s.load_rdh() == batches.load());  // no producer step was undone by a change
}
