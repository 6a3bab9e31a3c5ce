// stream-listen:HOST:PORT and stream-connect:HOST:PORT.
//
// Wire format: each frame is preceded by its length as a 32-bit big-endian
// number, the format of QEMU's "-netdev stream" and "-netdev socket,listen=
// / connect=", so either end may be QEMU.
//
// While connected the link is lossless in both directions:
// - TX: send() (NIC thread) writes straight to the socket when nothing is
//   queued; what the socket does not take goes to an output buffer of at
//   most kMaxPending bytes, flushed by the I/O thread when the socket is
//   writable. A frame is taken whole or not at all: when it does not fit,
//   send() answers Busy, and tx_ready is called once the buffer has drained
//   below half.
// - RX: frames are reassembled across reads and delivered in order; when
//   the NIC has no buffer (deliver() false) the frame is kept, the socket is
//   no longer read (TCP flow control then pushes back on the peer) and
//   reading resumes after rx_space_available(), which only posts to the I/O
//   thread.
// While disconnected, send() answers Dropped and counts: a vanished peer
// never stalls the VM. A connection that dies drops what was queued for it
// (counted in tx_dropped), and answers an outstanding Busy with tx_ready.
// A backend that goes away (the VM exits) first hands what is queued to
// the socket, waiting at most kCloseFlushTimeout for the peer to make room:
// the guest was told those frames went out.
// The link stays up throughout, as QEMU's does.
//
// listen: one peer at a time; while a peer is connected the listening
// socket is not watched (newcomers wait in the backlog) and the next is
// accepted when the current one goes away.
// connect: retries every kRetryInterval until the peer is up, and again
// whenever it goes away.
// A length above kMaxFrame is a protocol error: the connection is dropped.
#include "stream_backend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

#include "loop_backend.hpp"
#include "socket_address.hpp"
#include "xover/byte_order.hpp"
#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::net {
namespace {

using Interest = vmm::EventLoop::Interest;

// QEMU's own receive buffer holds 65536 bytes plus 4 KiB of headroom;
// accept anything it could send, refuse lengths beyond that.
constexpr std::size_t kMaxFrame = 65536 + 4096;
constexpr std::size_t kHeader = 4;
constexpr std::size_t kMaxPending = 256 * 1024;   // queued TX bytes before Busy
constexpr std::size_t kCompactAfter = 64 * 1024; // written bytes kept at the front of the TX buffer
constexpr std::size_t kRxBuffer = 256 * 1024;     // reassembly buffer (>= kHeader + kMaxFrame)
constexpr int kReadBudget = 16;                    // reads per wakeup
constexpr long kRetryIntervalNs = 200'000'000;     // connect retry
// How long a closing backend waits for its peer to take the queued bytes.
// A slow but live receiver needs milliseconds for kMaxPending; a peer that
// stopped reading must not hold the VM's exit for long.
constexpr auto kCloseFlushTimeout = std::chrono::seconds(2);
constexpr int kListenBacklog = 4;

// The backend's counters (net/counter_set.hpp).
#define XOVER_STREAM_BACKEND_COUNTERS(X, V)                                                      \
    X(tx_frames, "frames written to the connection")                                            \
    X(tx_bytes, "bytes of tx_frames (no length headers)")                                       \
    X(tx_dropped, "frames dropped: too long, no connection, or queued when it went away")       \
    X(tx_busy, "sends answered Busy: the send queue was full (the frame waits)")                \
    X(rx_frames, "frames delivered to the NIC")                                                 \
    X(rx_bytes, "bytes of rx_frames")                                                           \
    X(rx_dropped, "received frames lost when the connection went away")                         \
    X(rx_stalls, "times reading paused: the guest had no free RX buffer")                       \
    X(connects, "connections made (accepted or connected)")                                     \
    X(disconnects, "connections lost")                                                          \
    X(connect_failures, "connection attempts that failed (retried)")                            \
    X(protocol_errors, "connections dropped: the peer sent a bad frame length")
struct Stats {
    XOVER_COUNTER_SET(XOVER_STREAM_BACKEND_COUNTERS, "", Counter)
};

class StreamBackend final : public LoopBackend {
public:
    explicit StreamBackend(const StreamSpec& spec)
        : listening_(spec.role == StreamSpec::Role::Listen),
          description_(fmt::format("stream-{}:{}:{}", listening_ ? "listen" : "connect", spec.address.host,
                                   spec.address.port)),
          address_(resolve(spec.address, SOCK_STREAM, description_)) {
        out_.reserve(kCompactAfter + kMaxPending + kHeader + kMaxFrame);
        rx_.resize(kRxBuffer);
        if (listening_) {
            listener_ = kvm::UniqueFd(::socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            if (!listener_) throw system_error(description_ + ": socket");
            int one = 1;
            ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (::bind(listener_.get(), address_.get(), address_.length) < 0)
                throw system_error(fmt::format("{}: bind {}", description_, address_.to_string()));
            if (::listen(listener_.get(), kListenBacklog) < 0) throw system_error(description_ + ": listen");
        } else {
            timer_ = kvm::UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
            if (!timer_) throw system_error(description_ + ": timerfd_create");
        }
    }

    // The last reference is gone: no loop callback or send() can run, and
    // the loop itself may already be gone (the VM's exit), so only the
    // socket is used.
    ~StreamBackend() override { flush_before_close(); }

    void start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()> tx_ready) override {
        receiver_ = &receiver;
        tx_ready_ = std::move(tx_ready);
        attach(loop);
        if (listening_) {
            watch_listener();
        } else {
            loop.watch(timer_.get(), Interest::Readable, guarded([this] { on_retry_timer(); }));
            loop.post(guarded([this] { begin_connect(); }));
        }
    }

    // ---- NIC thread (and possibly the I/O thread via tx_ready) ----

    SendResult send(std::span<const std::uint8_t> frame) override {
        if (frame.size() > kMaxFrame) {
            stats_.tx_dropped.add();
            return SendResult::Dropped;
        }
        std::uint8_t header[kHeader];
        store_be32(header, std::uint32_t(frame.size()));
        std::lock_guard lock(tx_mutex_);
        if (!conn_ || broken_) {
            stats_.tx_dropped.add();
            return SendResult::Dropped;
        }
        std::size_t total = kHeader + frame.size();
        std::size_t written = 0;
        if (pending_locked() == 0) {
            iovec iov[2] = {{header, kHeader}, {const_cast<std::uint8_t*>(frame.data()), frame.size()}};
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = 2;
            ssize_t n = ::sendmsg(conn_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                mark_broken_locked(errno);
                stats_.tx_dropped.add();
                return SendResult::Dropped;
            }
            written = n > 0 ? std::size_t(n) : 0;
            if (written == total) {
                count_sent(frame.size());
                return SendResult::Sent;
            }
        } else if (pending_locked() + total > kMaxPending) {
            stats_.tx_busy.add();
            busy_outstanding_ = true;
            return SendResult::Busy;
        }
        // Queue whatever the socket did not take; the I/O thread flushes it.
        if (written < kHeader) out_.insert(out_.end(), header + written, header + kHeader);
        std::size_t body_from = written > kHeader ? written - kHeader : 0;
        out_.insert(out_.end(), frame.begin() + body_from, frame.end());
        if (written > 0) out_frame_start_ = out_.size();  // what was queued is a frame's tail, not a whole frame
        request_flush_locked();
        count_sent(frame.size());
        return SendResult::Sent;
    }

    Counters counters() const override {
        Counters out;
        stats_.append_to(out);
        return out;
    }

    std::string describe() const override { return description_; }

private:
    // ---- TX state, guarded by tx_mutex_ ----

    std::size_t pending_locked() const { return out_.size() - out_head_; }

    void count_sent(std::size_t bytes) {
        stats_.tx_frames.add();
        stats_.tx_bytes.add(bytes);
    }

    // The socket failed under send(); the I/O thread tears the connection down.
    void mark_broken_locked(int err) {
        broken_ = true;
        if (tx_log_.allow()) spdlog::info("{}: send: {}; dropping the connection", description_, std::strerror(err));
        loop().post(guarded([this, gen = generation_] {
            if (gen == current_generation()) teardown();
        }));
    }

    void request_flush_locked() {
        if (flush_requested_) return;
        flush_requested_ = true;
        loop().post(guarded([this, gen = generation_] { watch_writable(gen); }));
    }

    std::uint64_t current_generation() {
        std::lock_guard lock(tx_mutex_);
        return generation_;
    }

    // send() answered Sent for every queued frame, so the NIC completed it
    // and its guest moved on; a sender whose run ends while a slow peer
    // still holds it back exits with frames queued here. Closing then
    // would lose them (and could cut one in half), so they go to the
    // socket first; the kernel delivers them after close().
    void flush_before_close() {
        std::lock_guard lock(tx_mutex_);
        if (!conn_ || broken_) return;
        auto deadline = std::chrono::steady_clock::now() + kCloseFlushTimeout;
        for (;;) {
            if (!write_pending_locked()) break;  // the connection failed
            if (pending_locked() == 0) return;
            if (!wait_writable_locked(deadline)) break;
        }
        std::size_t dropped = queued_frames_locked();
        stats_.tx_dropped.add(dropped);
        spdlog::warn("{}: closing with {} frame(s) the peer did not take within {} s; dropped", description_,
                     dropped, kCloseFlushTimeout.count());
    }

    // Writes what the socket takes now. False once the connection failed.
    bool write_pending_locked() {
        while (pending_locked() > 0) {
            ssize_t n = ::send(conn_.get(), out_.data() + out_head_, pending_locked(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                out_head_ += std::size_t(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                return n == 0 || errno == EAGAIN;  // full for now
            }
        }
        return true;
    }

    // Waits until the socket takes more or the deadline passes (false).
    bool wait_writable_locked(std::chrono::steady_clock::time_point deadline) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{conn_.get(), POLLOUT, 0};
        int n = ::poll(&p, 1, int(left.count()));
        return n > 0 || (n < 0 && errno == EINTR);
    }

    // ---- I/O thread ----

    void watch_writable(std::uint64_t gen) {
        std::lock_guard lock(tx_mutex_);
        if (gen != generation_ || !conn_) return;
        loop().watch(conn_.get(), Interest::Writable, guarded([this] { on_writable(); }));
    }

    void on_writable() {
        bool failed = false, wake_nic = false;
        {
            std::lock_guard lock(tx_mutex_);
            if (!conn_) return;
            failed = !write_pending_locked();
            if (!failed) {
                if (pending_locked() == 0) {
                    out_.clear();
                    out_head_ = out_frame_start_ = 0;
                    flush_requested_ = false;
                    loop().unwatch(conn_.get(), Interest::Writable);
                } else if (out_head_ >= kCompactAfter) {
                    compact_out_locked();
                }
                if (busy_outstanding_ && pending_locked() <= kMaxPending / 2) {
                    busy_outstanding_ = false;
                    wake_nic = true;
                }
            }
        }
        if (failed) {
            teardown();
            return;
        }
        if (wake_nic && tx_ready_) tx_ready_();  // outside tx_mutex_: the NIC may send() right away
    }

    void on_readable() {
        for (int i = 0; i < kReadBudget; ++i) {
            if (rx_tail_ == rx_.size()) compact_rx();
            ssize_t n = ::recv(conn_fd(), rx_.data() + rx_tail_, rx_.size() - rx_tail_, MSG_DONTWAIT);
            if (n == 0) {
                teardown();
                return;
            }
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) return;
                if (rx_log_.allow()) spdlog::info("{}: recv: {}", description_, std::strerror(errno));
                teardown();
                return;
            }
            rx_tail_ += std::size_t(n);
            if (!deliver_buffered()) return;
        }
    }

    // Hands every complete frame in the buffer to the NIC. Returns false if
    // reading must stop: the NIC is full (now paused) or the connection died.
    bool deliver_buffered() {
        while (rx_tail_ - rx_head_ >= kHeader) {
            std::size_t length = load_be32(rx_.data() + rx_head_);
            if (length > kMaxFrame) {
                stats_.protocol_errors.add();
                if (rx_log_.allow())
                    spdlog::warn("{}: peer sent a frame length of {} bytes (max {}); dropping the connection",
                                 description_, length, kMaxFrame);
                teardown();
                return false;
            }
            if (rx_tail_ - rx_head_ < kHeader + length) break;
            if (length > 0) {  // an empty record carries no frame: skip it
                if (!deliver_frame(*receiver_, {rx_.data() + rx_head_ + kHeader, length})) {
                    pause_rx();
                    return false;
                }
                rx_unblocked();
                stats_.rx_frames.add();
                stats_.rx_bytes.add(length);
            }
            rx_head_ += kHeader + length;
        }
        if (rx_head_ == rx_tail_) rx_head_ = rx_tail_ = 0;
        return true;
    }

    void compact_rx() {
        std::memmove(rx_.data(), rx_.data() + rx_head_, rx_tail_ - rx_head_);
        rx_tail_ -= rx_head_;
        rx_head_ = 0;
    }

    void pause_rx() {
        if (rx_paused_) return;
        rx_paused_ = true;
        stats_.rx_stalls.add();
        loop().unwatch(conn_fd(), Interest::Readable);
    }

    void resume_rx() override {
        if (!rx_paused_ || conn_fd() < 0) return;
        rx_paused_ = false;
        if (!deliver_buffered()) return;
        loop().watch(conn_fd(), Interest::Readable, guarded([this] { on_readable(); }));
    }

    // The connection fd as seen from the I/O thread (which alone changes it).
    int conn_fd() const { return conn_fd_; }

    void adopt_connection(kvm::UniqueFd fd) {
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        {
            std::lock_guard lock(tx_mutex_);
            conn_ = std::move(fd);
            conn_fd_ = conn_.get();
            broken_ = false;
            ++generation_;
        }
        rx_head_ = rx_tail_ = 0;
        rx_paused_ = false;
        rx_unblocked();
        stats_.connects.add();
        spdlog::info("{}: connected", description_);
        set_connected(true);
        loop().watch(conn_fd_, Interest::Readable, guarded([this] { on_readable(); }));
    }

    // The link follows the connection, like a cable with a peer at its
    // other end: a guest waiting for link up does not send into the void
    // before its peer is there.
    bool link_up() const override { return connected_.load(std::memory_order_acquire); }

    void set_connected(bool connected) {
        connected_.store(connected, std::memory_order_release);
        if (receiver_) receiver_->link_state_changed();
    }

    void teardown() {
        bool wake_nic;
        {
            std::lock_guard lock(tx_mutex_);
            if (!conn_) return;
            loop().unwatch(conn_.get(), Interest::Readable);
            loop().unwatch(conn_.get(), Interest::Writable);
            stats_.tx_dropped.add(queued_frames_locked());
            out_.clear();
            out_head_ = out_frame_start_ = 0;
            flush_requested_ = false;
            conn_.reset();
            conn_fd_ = -1;
            broken_ = false;
            ++generation_;
            wake_nic = std::exchange(busy_outstanding_, false);
        }
        stats_.rx_dropped.add(complete_rx_frames());
        rx_head_ = rx_tail_ = 0;
        rx_paused_ = false;
        rx_unblocked();
        stats_.disconnects.add();
        spdlog::info("{}: peer went away", description_);
        set_connected(false);
        if (listening_) watch_listener();
        else arm_retry();
        // A NIC waiting for tx_ready must hear that sending now fails fast.
        if (wake_nic && tx_ready_) tx_ready_();
    }

    // Frames in the output buffer not yet fully written: a leading tail of
    // a frame send() partly wrote, plus every whole frame not fully flushed.
    std::size_t queued_frames_locked() const {
        std::size_t count = out_head_ < out_frame_start_ ? 1 : 0;
        for (std::size_t at = out_frame_start_; at + kHeader <= out_.size();) {
            std::size_t end = at + kHeader + load_be32(out_.data() + at);
            if (end > out_head_) ++count;
            at = end;
        }
        return count;
    }

    // Drops the written bytes from the front of the output buffer, keeping
    // out_frame_start_ on a frame boundary.
    void compact_out_locked() {
        std::size_t at = out_frame_start_;
        while (at < out_head_ && at + kHeader <= out_.size()) {
            std::size_t end = at + kHeader + load_be32(out_.data() + at);
            at = end;  // a frame straddling out_head_ leaves `at` at its end: its rest is a tail
        }
        out_.erase(out_.begin(), out_.begin() + std::ptrdiff_t(out_head_));
        out_frame_start_ = at - out_head_;
        out_head_ = 0;
    }

    std::size_t complete_rx_frames() const {
        std::size_t count = 0;
        for (std::size_t at = rx_head_; rx_tail_ - at >= kHeader;) {
            std::size_t length = load_be32(rx_.data() + at);
            if (length > kMaxFrame || rx_tail_ - at < kHeader + length) break;
            if (length > 0) ++count;
            at += kHeader + length;
        }
        return count;
    }

    // -- listen side --

    void watch_listener() { loop().watch(listener_.get(), Interest::Readable, guarded([this] { on_accept(); })); }

    void on_accept() {
        kvm::UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EINTR && rx_log_.allow())
                spdlog::warn("{}: accept: {}", description_, std::strerror(errno));
            return;
        }
        loop().unwatch(listener_.get(), Interest::Readable);  // one peer at a time
        adopt_connection(std::move(fd));
    }

    // -- connect side --

    void begin_connect() {
        kvm::UniqueFd fd(::socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
            connect_failed(errno);
            return;
        }
        if (::connect(fd.get(), address_.get(), address_.length) == 0) {
            adopt_connection(std::move(fd));
            return;
        }
        if (errno != EINPROGRESS) {
            connect_failed(errno);
            return;
        }
        connecting_ = std::move(fd);
        loop().watch(connecting_.get(), Interest::Writable, guarded([this] { on_connect_done(); }));
    }

    void on_connect_done() {
        loop().unwatch(connecting_.get(), Interest::Writable);
        kvm::UniqueFd fd = std::move(connecting_);
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) {
            connect_failed(err);
            return;
        }
        adopt_connection(std::move(fd));
    }

    void connect_failed(int err) {
        stats_.connect_failures.add();
        if (connect_log_.allow())
            spdlog::info("{}: connect: {}; retrying every {} ms", description_, std::strerror(err),
                         kRetryIntervalNs / 1'000'000);
        arm_retry();
    }

    void arm_retry() {
        itimerspec when{};
        when.it_value.tv_nsec = kRetryIntervalNs;
        ::timerfd_settime(timer_.get(), 0, &when, nullptr);
    }

    void on_retry_timer() {
        std::uint64_t expirations;
        if (::read(timer_.get(), &expirations, sizeof expirations) < 0) return;
        if (conn_fd_ < 0 && !connecting_) begin_connect();
    }

    void close_on_loop() override {
        if (listener_) loop().unwatch(listener_.get(), Interest::Readable);
        if (timer_) loop().unwatch(timer_.get(), Interest::Readable);
        if (connecting_) loop().unwatch(connecting_.get(), Interest::Writable);
        if (conn_fd_ >= 0) {
            loop().unwatch(conn_fd_, Interest::Readable);
            loop().unwatch(conn_fd_, Interest::Writable);
        }
    }

    const bool listening_;
    const std::string description_;
    const SocketAddress address_;
    kvm::UniqueFd listener_;    // listen side
    kvm::UniqueFd timer_;       // connect side: retry timer
    kvm::UniqueFd connecting_;  // connect side: a connect() in progress
    FrameReceiver* receiver_ = nullptr;
    std::atomic<bool> connected_{false};
    std::function<void()> tx_ready_;

    // TX, shared between send() and the I/O thread.
    std::mutex tx_mutex_;
    kvm::UniqueFd conn_;
    bool broken_ = false;
    std::uint64_t generation_ = 0;      // bumped per connection change: stale posts ignore themselves
    std::vector<std::uint8_t> out_;     // queued bytes; [out_head_, end) not yet written
    std::size_t out_head_ = 0;
    std::size_t out_frame_start_ = 0;   // out_ before this holds only the tail of a partly written frame
    bool flush_requested_ = false;
    bool busy_outstanding_ = false;     // send() said Busy; tx_ready owed

    // RX, I/O thread only (plus the two atomics).
    int conn_fd_ = -1;
    std::vector<std::uint8_t> rx_;
    std::size_t rx_head_ = 0, rx_tail_ = 0;
    bool rx_paused_ = false;

    Stats stats_;
    vmm::RateLimitedLog tx_log_{1}, rx_log_{1}, connect_log_{1};  // one line a second each
};

}  // namespace

std::unique_ptr<Backend> make_stream_backend(const StreamSpec& spec) {
    return std::make_unique<OwnedBackend>(std::make_shared<StreamBackend>(spec));
}

}  // namespace xover::net
