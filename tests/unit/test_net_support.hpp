// Helpers for the net backend tests: an event loop on its own thread, a
// fake NIC receive side, polling waits with a deadline, and (counters.hpp)
// a backend's counter by name.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "counters.hpp"
#include "xover/net/backend.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::test {

class LoopThread {
public:
    LoopThread() : loop_(vmm::make_event_loop()), thread_([this] { loop_->run(); }) {}
    ~LoopThread() {
        loop_->stop();
        thread_.join();
    }
    vmm::EventLoop& loop() { return *loop_; }

private:
    std::unique_ptr<vmm::EventLoop> loop_;
    std::thread thread_;
};

// Records delivered frames; refuses them while `accepting` is false.
class FakeReceiver : public net::FrameReceiver {
public:
    std::atomic<bool> accepting{true};
    std::atomic<int> refusals{0};
    std::atomic<int> link_changes{0};

    void link_state_changed() override { ++link_changes; }

    bool deliver(std::span<const std::uint8_t> frame) override {
        if (!accepting.load()) {
            ++refusals;
            return false;
        }
        std::lock_guard lock(mutex_);
        frames_.emplace_back(frame.begin(), frame.end());
        return true;
    }
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return frames_.size();
    }
    std::vector<std::vector<std::uint8_t>> frames() {
        std::lock_guard lock(mutex_);
        return frames_;
    }

private:
    std::mutex mutex_;
    std::vector<std::vector<std::uint8_t>> frames_;
};

// Polls `condition` every millisecond for up to `limit`.
inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// A frame of `size` bytes whose content encodes `seq`.
inline std::vector<std::uint8_t> test_frame(std::uint32_t seq, std::size_t size = 60) {
    std::vector<std::uint8_t> frame(size);
    for (std::size_t i = 0; i < size; ++i) frame[i] = std::uint8_t(seq * 7 + i);
    if (size >= 4) {
        frame[0] = std::uint8_t(seq >> 24);
        frame[1] = std::uint8_t(seq >> 16);
        frame[2] = std::uint8_t(seq >> 8);
        frame[3] = std::uint8_t(seq);
    }
    return frame;
}

// Ports for this process's tests (offsets 0-9): spread by pid so parallel
// runs do not collide, and below Linux's ephemeral range (32768 on), where
// an outgoing connection of any process may hold the port already.
inline std::uint16_t test_port(unsigned offset) { return std::uint16_t(20000 + (::getpid() % 1270) * 10 + offset); }

}  // namespace xover::test
