// The VM's I/O thread: one loop (io_uring) that waits on file descriptors
// — backend sockets and taps, ioeventfds, irqfd resample fds — and runs the
// callback registered for each when it becomes readable or writable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace xover::vmm {

class EventLoop {
public:
    enum class Interest : std::uint8_t { Readable = 1, Writable = 2 };
    using Callback = std::function<void()>;

    virtual ~EventLoop() = default;

    // Runs `cb` on the loop thread each time `fd` is ready for `interest`
    // (level-triggered: it is called again while the condition holds).
    // Safe to call from any thread.
    virtual void watch(int fd, Interest interest, Callback cb) = 0;
    virtual void unwatch(int fd, Interest interest) = 0;
    // Runs `cb` once on the loop thread, soon. Safe from any thread; the
    // way a vCPU thread asks the I/O thread to do something.
    virtual void post(Callback cb) = 0;

    // Runs until stop(); stop() is safe from any thread.
    virtual void run() = 0;
    virtual void stop() = 0;
};

std::unique_ptr<EventLoop> make_event_loop();

}  // namespace xover::vmm
