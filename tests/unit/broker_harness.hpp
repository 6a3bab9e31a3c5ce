// The in-process broker harness: a broker serving on its own thread, and
// a fake VM's side of its broker connection run by hand.
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <thread>

#include "xover/crossover/broker.hpp"
#include "xover/crossover/client.hpp"

namespace xover::crossover::test {

// A broker serving on its own thread for the duration of a test. Without
// its seccomp filter: the filter covers every thread of the process
// (vmm/seccomp.cpp), so here it would cover the test runner too. The real
// binary's broker runs under it in the integration tests (broker_api.sh).
struct BrokerThread {
    Broker broker;
    std::thread thread;
    explicit BrokerThread(BrokerOptions o) : broker(without_seccomp(std::move(o))), thread([this] { broker.run(); }) {}
    static BrokerOptions without_seccomp(BrokerOptions o) {
        o.seccomp = vmm::SeccompMode::Off;
        return o;
    }
    ~BrokerThread() {
        broker.stop();
        thread.join();
    }
};

// Runs a fake VM's I/O loop (its client, reporting to `links`) until
// `done` holds (or 5 s pass).
inline bool pump_until(BrokerClient& client, LinkHandler& links, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        pollfd p{client.fd(), POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) client.on_readable(links);
    }
    return true;
}

// Handles what arrives within `ms` milliseconds, if anything does.
inline void pump_briefly(BrokerClient& client, LinkHandler& links, int ms = 100) {
    pollfd p{client.fd(), POLLIN, 0};
    if (::poll(&p, 1, ms) > 0) client.on_readable(links);
}

}  // namespace xover::crossover::test
