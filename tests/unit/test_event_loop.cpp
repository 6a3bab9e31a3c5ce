#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "test_net_support.hpp"
#include "xover/vmm/event_loop.hpp"

using xover::test::wait_until;
using Interest = xover::vmm::EventLoop::Interest;

namespace {

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        ::close(r);
        ::close(w);
    }
};

}  // namespace

TEST_CASE("event loop: post from another thread runs on the loop thread", "[event_loop]") {
    xover::test::LoopThread lt;
    std::atomic<std::thread::id> ran_on{};
    std::atomic<int> runs{0};
    std::thread poster([&] {
        for (int i = 0; i < 100; ++i)
            lt.loop().post([&] {
                ran_on = std::this_thread::get_id();
                ++runs;
            });
    });
    poster.join();
    REQUIRE(wait_until([&] { return runs.load() == 100; }));
    CHECK(ran_on.load() != std::this_thread::get_id());
}

TEST_CASE("event loop: post from the loop thread is deferred, not inline", "[event_loop]") {
    xover::test::LoopThread lt;
    std::atomic<int> step{0};
    std::atomic<bool> inline_run{false};
    lt.loop().post([&] {
        lt.loop().post([&] { step = 2; });
        inline_run = step.load() == 2;
        step = 1;
    });
    REQUIRE(wait_until([&] { return step.load() == 2; }));
    CHECK_FALSE(inline_run.load());
}

TEST_CASE("event loop: readable is level-triggered", "[event_loop]") {
    Pipe p;
    xover::test::LoopThread lt;
    std::atomic<int> calls{0};
    // Reads one byte per call: level triggering must call again while bytes remain.
    lt.loop().watch(p.r, Interest::Readable, [&] {
        char c;
        if (::read(p.r, &c, 1) == 1) ++calls;
    });
    REQUIRE(::write(p.w, "abc", 3) == 3);
    REQUIRE(wait_until([&] { return calls.load() == 3; }));
    REQUIRE(::write(p.w, "d", 1) == 1);
    REQUIRE(wait_until([&] { return calls.load() == 4; }));
}

TEST_CASE("event loop: writable fires, and unwatch inside the callback stops it", "[event_loop]") {
    Pipe p;
    xover::test::LoopThread lt;
    std::atomic<int> calls{0};
    lt.loop().watch(p.w, Interest::Writable, [&] {
        ++calls;
        lt.loop().unwatch(p.w, Interest::Writable);
    });
    REQUIRE(wait_until([&] { return calls.load() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(calls.load() == 1);
}

TEST_CASE("event loop: unwatch from another thread stops callbacks", "[event_loop]") {
    Pipe p;
    xover::test::LoopThread lt;
    std::atomic<int> calls{0};
    lt.loop().watch(p.r, Interest::Readable, [&] {
        char c;
        if (::read(p.r, &c, 1) == 1) ++calls;
    });
    REQUIRE(::write(p.w, "a", 1) == 1);
    REQUIRE(wait_until([&] { return calls.load() == 1; }));
    lt.loop().unwatch(p.r, Interest::Readable);
    std::atomic<bool> synced{false};
    lt.loop().post([&] { synced = true; });  // the unwatch was applied before this ran
    REQUIRE(wait_until([&] { return synced.load(); }));
    REQUIRE(::write(p.w, "b", 1) == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(calls.load() == 1);
}

TEST_CASE("event loop: watching again replaces the callback", "[event_loop]") {
    Pipe p;
    xover::test::LoopThread lt;
    std::atomic<int> first{0}, second{0};
    lt.loop().watch(p.r, Interest::Readable, [&] { ++first; });
    lt.loop().watch(p.r, Interest::Readable, [&] {
        char c;
        if (::read(p.r, &c, 1) == 1) ++second;
    });
    REQUIRE(::write(p.w, "a", 1) == 1);
    REQUIRE(wait_until([&] { return second.load() == 1; }));
    CHECK(first.load() == 0);
}

TEST_CASE("event loop: readable and writable on one fd are independent", "[event_loop]") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    xover::test::LoopThread lt;
    std::atomic<int> readable{0}, writable{0};
    lt.loop().watch(sv[0], Interest::Writable, [&] {
        ++writable;
        lt.loop().unwatch(sv[0], Interest::Writable);
    });
    lt.loop().watch(sv[0], Interest::Readable, [&] {
        char c;
        if (::read(sv[0], &c, 1) == 1) ++readable;
    });
    REQUIRE(::write(sv[1], "x", 1) == 1);
    REQUIRE(wait_until([&] { return readable.load() == 1 && writable.load() == 1; }));
    lt.loop().unwatch(sv[0], Interest::Readable);
    std::atomic<bool> synced{false};
    lt.loop().post([&] { synced = true; });
    REQUIRE(wait_until([&] { return synced.load(); }));
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("event loop: stop ends run, also when called before run", "[event_loop]") {
    auto loop = xover::vmm::make_event_loop();
    loop->stop();
    loop->run();  // returns at once
    std::atomic<bool> done{false};
    std::thread t([&] {
        loop->run();
        done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK_FALSE(done.load());
    loop->stop();
    t.join();
    CHECK(done.load());
    // run() again after stop works, and queued posts run.
    std::atomic<bool> posted{false};
    loop->post([&] {
        posted = true;
        loop->stop();
    });
    loop->run();
    CHECK(posted.load());
}

TEST_CASE("event loop: many watches and posts under load", "[event_loop]") {
    xover::test::LoopThread lt;
    constexpr int kPipes = 40;  // more than fit in one submission batch would not matter; the SQ has 256
    std::vector<std::unique_ptr<Pipe>> pipes;
    std::atomic<int> bytes{0};
    for (int i = 0; i < kPipes; ++i) {
        pipes.push_back(std::make_unique<Pipe>());
        int fd = pipes.back()->r;
        lt.loop().watch(fd, Interest::Readable, [fd, &bytes] {
            char buf[64];
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0) bytes += int(n);
        });
    }
    for (int round = 0; round < 10; ++round)
        for (auto& p : pipes) REQUIRE(::write(p->w, "x", 1) == 1);
    REQUIRE(wait_until([&] { return bytes.load() == kPipes * 10; }));
    for (auto& p : pipes) lt.loop().unwatch(p->r, Interest::Readable);
    std::atomic<bool> synced{false};
    lt.loop().post([&] { synced = true; });
    REQUIRE(wait_until([&] { return synced.load(); }));
}
