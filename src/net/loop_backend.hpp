// Lifetime plumbing shared by the backends that live on the event loop.
//
// The loop holds callbacks that point into a backend, and a backend may be
// destroyed on a thread other than the loop's. So such a backend is owned
// through a shared_ptr; the unique_ptr handed to the NIC is a thin
// OwnedBackend that, when destroyed, marks the backend dead and posts its
// final teardown (unwatching and closing every fd) to the loop thread.
// Every loop callback goes through guarded(), which does nothing once the
// backend is dead or gone.
//
// Rule for owners: destroy a started backend before its event loop, and
// either on the loop thread or while the loop is not running a callback of
// this backend (e.g. after run() returned) — a callback already running
// when the backend dies may still call the receiver once.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <utility>

#include "xover/net/backend.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::net {

class LoopBackend : public Backend, public std::enable_shared_from_this<LoopBackend> {
public:
    // The NIC has room again after it refused a frame: resume_rx() runs on
    // the loop, once however often this is called meanwhile. (rx_blocked_
    // is set before every deliver() and cleared after a successful one, so
    // a refusal is always visible here: the NIC's lock orders the two.)
    void rx_space_available() final {
        if (!attached() || !rx_blocked_.load()) return;
        if (!resume_posted_.exchange(true))
            loop().post(guarded([this] {
                resume_posted_.store(false);
                resume_rx();
            }));
    }

    // Called once by OwnedBackend's destructor, from the owner's thread.
    void kill() {
        dead_.store(true);
        if (vmm::EventLoop* loop = loop_.load()) {
            // The closure keeps the backend alive until the loop has run it.
            loop->post([self = shared_from_this()] { self->close_on_loop(); });
        }
    }

protected:
    // Remember the loop; call first thing in start().
    void attach(vmm::EventLoop& loop) { loop_.store(&loop); }
    vmm::EventLoop& loop() const { return *loop_.load(); }
    bool attached() const { return loop_.load() != nullptr; }

    // Wraps a member action for the loop: skipped once the backend is dead.
    template <typename F>
    vmm::EventLoop::Callback guarded(F action) {
        return [weak = weak_from_this(), action = std::move(action)] {
            auto self = weak.lock();
            if (self && !self->dead_.load(std::memory_order_relaxed)) action();
        };
    }

    // On the loop thread after kill(): unwatch every fd (closing follows in
    // the destructor, which runs when the last reference goes).
    virtual void close_on_loop() = 0;

    // Hands a received frame to the NIC; false: refused, and the backend
    // stops reading until its resume_rx() runs.
    bool deliver_frame(FrameReceiver& receiver, std::span<const std::uint8_t> frame) {
        rx_blocked_.store(true);
        if (!receiver.deliver(frame)) return false;
        rx_blocked_.store(false);
        return true;
    }
    // Nothing refused is waiting any more (a connection that went or came).
    void rx_unblocked() { rx_blocked_.store(false); }
    // On the loop, after rx_space_available(): read again.
    virtual void resume_rx() = 0;

private:
    std::atomic<bool> rx_blocked_{false};
    std::atomic<bool> resume_posted_{false};
    std::atomic<bool> dead_{false};
    std::atomic<vmm::EventLoop*> loop_{nullptr};
};

// What make_backend returns for a LoopBackend.
class OwnedBackend final : public Backend {
public:
    explicit OwnedBackend(std::shared_ptr<LoopBackend> impl) : impl_(std::move(impl)) {}
    ~OwnedBackend() override { impl_->kill(); }

    void start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()> tx_ready) override {
        impl_->start(loop, receiver, std::move(tx_ready));
    }
    SendResult send(std::span<const std::uint8_t> frame) override { return impl_->send(frame); }
    void rx_space_available() override { impl_->rx_space_available(); }
    bool link_up() const override { return impl_->link_up(); }
    Counters counters() const override { return impl_->counters(); }
    std::string describe() const override { return impl_->describe(); }

private:
    std::shared_ptr<LoopBackend> impl_;
};

}  // namespace xover::net
