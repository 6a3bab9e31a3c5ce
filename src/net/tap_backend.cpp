// tap:IFNAME. The fd is opened with IFF_TAP|IFF_NO_PI: each read() or
// write() is exactly one Ethernet frame, no extra header.
//
// RX: the I/O thread reads frames while the tap is readable (a budget per
// wakeup keeps the loop fair) and hands each to the NIC; a frame the NIC has
// no buffer for is dropped and counted, as a real NIC drops on a full ring.
// TX: send() writes directly from the caller's thread (one syscall per frame,
// no hop through the I/O thread); a tap whose queue is full (EAGAIN) or that
// fails drops the frame and counts it: Dropped, never Busy.
#include "tap_backend.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "loop_backend.hpp"
#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/net/tap_device.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::net {
namespace {

constexpr std::size_t kMaxFrame = 65535;
constexpr int kReadBudget = 64;  // frames per wakeup before yielding to other fds

// The backend's counters (net/counter_set.hpp).
#define XOVER_TAP_BACKEND_COUNTERS(X, V)                                  \
    X(tx_frames, "frames written to the tap")                            \
    X(tx_bytes, "bytes of tx_frames")                                    \
    X(tx_dropped, "frames the tap refused (dropped: a tap is lossy)")    \
    X(rx_frames, "frames read from the tap and delivered to the NIC")    \
    X(rx_bytes, "bytes of rx_frames")                                    \
    X(rx_dropped, "frames read while the guest had no free RX buffer")
struct Stats {
    XOVER_COUNTER_SET(XOVER_TAP_BACKEND_COUNTERS, "", Counter)
};

class TapBackend final : public LoopBackend {
public:
    explicit TapBackend(const TapSpec& spec)
        : ifname_(spec.ifname), fd_(open_tap(spec.ifname, TapMissing::Create)), rx_buffer_(kMaxFrame) {
        bring_tap_up(ifname_);
    }

    void start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()>) override {
        attach(loop);
        receiver_ = &receiver;
        loop.watch(fd_.get(), vmm::EventLoop::Interest::Readable, guarded([this] { on_readable(); }));
    }

    SendResult send(std::span<const std::uint8_t> frame) override {
        if (frame.size() > kMaxFrame) return drop(frame);
        ssize_t n = ::write(fd_.get(), frame.data(), frame.size());
        if (n == ssize_t(frame.size())) {
            stats_.tx_frames.add();
            stats_.tx_bytes.add(frame.size());
            return SendResult::Sent;
        }
        if (n < 0 && errno != EAGAIN && tx_log_.allow())
            spdlog::warn("tap:{}: write: {} (frame dropped)", ifname_, std::strerror(errno));
        return drop(frame);
    }

    // Lossy: a frame the NIC refuses is dropped (counted), never held back,
    // so there is never anything to resume.
    void resume_rx() override {}

    Counters counters() const override {
        Counters out;
        stats_.append_to(out);
        return out;
    }

    std::string describe() const override { return "tap:" + ifname_; }

private:
    SendResult drop(std::span<const std::uint8_t>) {
        stats_.tx_dropped.add();
        return SendResult::Dropped;
    }

    void on_readable() {
        for (int i = 0; i < kReadBudget; ++i) {
            ssize_t n = ::read(fd_.get(), rx_buffer_.data(), rx_buffer_.size());
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) return;
                // A deleted interface keeps the fd readable with an error
                // forever; stop watching rather than spin. Frames sent still
                // go to write(), which fails and counts them.
                spdlog::error("tap:{}: read: {}; no longer receiving from this tap", ifname_, std::strerror(errno));
                loop().unwatch(fd_.get(), vmm::EventLoop::Interest::Readable);
                return;
            }
            if (n == 0) return;
            auto frame = std::span<const std::uint8_t>(rx_buffer_.data(), std::size_t(n));
            if (receiver_->deliver(frame)) {
                stats_.rx_frames.add();
                stats_.rx_bytes.add(std::size_t(n));
            } else {
                stats_.rx_dropped.add();
            }
        }
    }

    void close_on_loop() override {
        if (attached()) loop().unwatch(fd_.get(), vmm::EventLoop::Interest::Readable);
    }

    std::string ifname_;
    kvm::UniqueFd fd_;
    FrameReceiver* receiver_ = nullptr;
    std::vector<std::uint8_t> rx_buffer_;
    Stats stats_;
    vmm::RateLimitedLog tx_log_{1}, rx_log_{1};  // one line a second each
};

}  // namespace

std::unique_ptr<Backend> make_tap_backend(const TapSpec& spec) {
    return std::make_unique<OwnedBackend>(std::make_shared<TapBackend>(spec));
}

}  // namespace xover::net
