// The I/O thread's loop over io_uring.
//
// Readiness is watched with IORING_OP_POLL_ADD. The interface promises
// level-triggered callbacks, and io_uring's multishot poll is edge-triggered
// (measured on this kernel: a pipe with unread data yields one CQE, and
// IORING_POLL_ADD_LEVEL together with IORING_POLL_ADD_MULTI is refused with
// EINVAL). So each watch is a one-shot poll re-armed after its callback:
// the kernel checks readiness when a poll is armed, which is exactly level
// triggering, and the re-arm SQE rides along in the io_uring_enter() the
// loop makes anyway to wait, so it costs no extra syscall.
//
// Other threads never touch the ring: watch/unwatch/post from them go into a
// mutex-protected queue and an eventfd wakes the loop, which applies them.
// watch/unwatch called on the loop thread itself (from a callback) apply at
// once, so a callback that unwatches its fd is never called again.
#include "xover/vmm/event_loop.hpp"

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/restricted_ring.hpp"

namespace xover::vmm {
namespace {

constexpr unsigned kRingEntries = 256;
// user_data values with a meaning of their own; watches count up from kFirstWatchId.
constexpr std::uint64_t kIgnoredCompletion = 0;  // results of POLL_REMOVE
constexpr std::uint64_t kWakeupId = 1;           // the eventfd poll
constexpr std::uint64_t kFirstWatchId = 2;

unsigned poll_mask(EventLoop::Interest interest) {
    return interest == EventLoop::Interest::Readable ? POLLIN : POLLOUT;
}

class UringEventLoop final : public EventLoop {
public:
    UringEventLoop() {
        // Polls only: the ring can do nothing the seccomp filter forbids.
        init_restricted_ring(ring_, kRingEntries, {IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE});
        wakeup_ = kvm::UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!wakeup_) {
            int saved = errno;
            io_uring_queue_exit(&ring_);
            throw system_error("eventfd for the event loop", saved);
        }
    }

    ~UringEventLoop() override { io_uring_queue_exit(&ring_); }

    void watch(int fd, Interest interest, Callback cb) override {
        if (on_loop_thread()) {
            add_watch(fd, interest, std::move(cb));
            return;
        }
        enqueue(Op{Op::Kind::Watch, fd, interest, std::move(cb)});
    }

    void unwatch(int fd, Interest interest) override {
        if (on_loop_thread()) {
            remove_watch(fd, interest);
            return;
        }
        enqueue(Op{Op::Kind::Unwatch, fd, interest, {}});
    }

    void post(Callback cb) override {
        // Always queued, even from the loop thread: "soon", never inline.
        enqueue(Op{Op::Kind::Post, -1, Interest::Readable, std::move(cb)});
    }

    void run() override {
        loop_thread_.store(std::this_thread::get_id());
        arm_wakeup();
        while (!stop_requested_.load()) {
            apply_queued_ops();
            if (stop_requested_.load()) break;
            int err = io_uring_submit_and_wait(&ring_, 1);
            if (err < 0 && err != -EINTR && err != -EBUSY) {
                spdlog::error("event loop: io_uring_submit_and_wait: {}", std::strerror(-err));
                break;
            }
            handle_completions();
        }
        stop_requested_.store(false);
        loop_thread_.store(std::thread::id{});
        // The wakeup poll and the watches' polls stay armed across run()
        // calls; their completions are handled by the next run().
    }

    void stop() override {
        stop_requested_.store(true);
        wake();
    }

private:
    struct Watch {
        int fd;
        Interest interest;
        Callback cb;
        bool armed = false;  // a poll SQE/request for it is outstanding
    };

    struct Op {
        enum class Kind { Watch, Unwatch, Post } kind;
        int fd;
        Interest interest;
        Callback cb;
    };

    using Key = std::pair<int, Interest>;

    bool on_loop_thread() const { return loop_thread_.load() == std::this_thread::get_id(); }

    void enqueue(Op op) {
        bool was_empty;
        {
            std::lock_guard lock(queue_mutex_);
            was_empty = queue_.empty();
            queue_.push_back(std::move(op));
        }
        // Only the first op of a batch needs to ring; the loop drains all.
        if (was_empty) wake();
    }

    void wake() {
        std::uint64_t one = 1;
        // A full counter (impossible in practice) still leaves it readable.
        [[maybe_unused]] ssize_t n = ::write(wakeup_.get(), &one, sizeof one);
    }

    void apply_queued_ops() {
        std::vector<Op> ops;
        {
            std::lock_guard lock(queue_mutex_);
            ops.swap(queue_);
        }
        for (Op& op : ops) {
            switch (op.kind) {
                case Op::Kind::Watch: add_watch(op.fd, op.interest, std::move(op.cb)); break;
                case Op::Kind::Unwatch: remove_watch(op.fd, op.interest); break;
                case Op::Kind::Post: op.cb(); break;
            }
        }
    }

    void add_watch(int fd, Interest interest, Callback cb) {
        remove_watch(fd, interest);  // watching again replaces the callback
        std::uint64_t id = next_id_++;
        auto watch = std::make_shared<Watch>(Watch{fd, interest, std::move(cb)});
        by_key_[{fd, interest}] = id;
        watches_[id] = watch;
        arm(id, *watch);
    }

    void remove_watch(int fd, Interest interest) {
        auto it = by_key_.find({fd, interest});
        if (it == by_key_.end()) return;
        std::uint64_t id = it->second;
        by_key_.erase(it);
        auto w = watches_.find(id);
        if (w != watches_.end()) {
            if (w->second->armed) submit_remove(id);
            watches_.erase(w);  // a callback running right now keeps its own reference
        }
    }

    io_uring_sqe* get_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        while (!sqe) {  // SQ full: hand what we have to the kernel and retry
            io_uring_submit(&ring_);
            sqe = io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

    void arm(std::uint64_t id, Watch& watch) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_poll_add(sqe, watch.fd, poll_mask(watch.interest));
        io_uring_sqe_set_data64(sqe, id);
        watch.armed = true;
    }

    void arm_wakeup() {
        if (wakeup_armed_) return;
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_poll_add(sqe, wakeup_.get(), POLLIN);
        io_uring_sqe_set_data64(sqe, kWakeupId);
        wakeup_armed_ = true;
    }

    void submit_remove(std::uint64_t id) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_poll_remove(sqe, id);
        io_uring_sqe_set_data64(sqe, kIgnoredCompletion);
    }

    void handle_completions() {
        // Copy the batch out first: callbacks arm new polls, which may
        // submit and so must not interleave with walking the CQ ring.
        completions_.clear();
        unsigned head;
        io_uring_cqe* cqe;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            completions_.push_back({cqe->user_data, cqe->res});
            ++seen;
        }
        io_uring_cq_advance(&ring_, seen);

        for (auto [id, res] : completions_) {
            if (id == kIgnoredCompletion) continue;
            if (id == kWakeupId) {
                wakeup_armed_ = false;
                std::uint64_t value;
                [[maybe_unused]] ssize_t n = ::read(wakeup_.get(), &value, sizeof value);
                arm_wakeup();
                continue;  // queued ops are applied at the top of the loop
            }
            dispatch(id, res);
        }
    }

    void dispatch(std::uint64_t id, int res) {
        auto it = watches_.find(id);
        if (it == watches_.end()) return;  // unwatched while the poll was in flight
        std::shared_ptr<Watch> watch = it->second;
        watch->armed = false;
        if (res < 0) {
            if (res == -ECANCELED) return;
            spdlog::warn("event loop: poll on fd {} failed: {}; no longer watching it", watch->fd,
                         std::strerror(-res));
            remove_watch(watch->fd, watch->interest);
            return;
        }
        watch->cb();
        // Re-arm only if the callback left the watch in place (it may have
        // unwatched it, or replaced it with a new watch under a new id).
        if (watches_.count(id)) arm(id, *watch);
    }

    io_uring ring_{};
    kvm::UniqueFd wakeup_;
    bool wakeup_armed_ = false;
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::thread::id> loop_thread_{};

    std::mutex queue_mutex_;
    std::vector<Op> queue_;

    // Loop-thread-only state.
    std::uint64_t next_id_ = kFirstWatchId;
    std::map<Key, std::uint64_t> by_key_;
    std::unordered_map<std::uint64_t, std::shared_ptr<Watch>> watches_;
    std::vector<std::pair<std::uint64_t, int>> completions_;
};

}  // namespace

std::unique_ptr<EventLoop> make_event_loop() { return std::make_unique<UringEventLoop>(); }

}  // namespace xover::vmm
