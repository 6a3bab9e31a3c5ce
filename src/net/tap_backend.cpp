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

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "counter.hpp"
#include "log_limiter.hpp"
#include "loop_backend.hpp"
#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"

namespace xover::net {
namespace {

constexpr std::size_t kMaxFrame = 65535;
constexpr int kReadBudget = 64;  // frames per wakeup before yielding to other fds

kvm::UniqueFd open_tap(const std::string& ifname) {
    kvm::UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) throw system_error(fmt::format("tap:{}: open /dev/net/tun", ifname));
    ifreq req{};
    req.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd.get(), TUNSETIFF, &req) < 0)
        throw system_error(fmt::format("tap:{}: TUNSETIFF (needs CAP_NET_ADMIN, or a persistent tap owned by you)",
                                       ifname));
    return fd;
}

// Brings the interface up. Not fatal: a persistent tap prepared by an
// administrator may be attachable without the right to change its flags.
void bring_up(const std::string& ifname) {
    kvm::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq req{};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (!sock || ::ioctl(sock.get(), SIOCGIFFLAGS, &req) < 0) {
        spdlog::warn("tap:{}: cannot read interface flags: {}", ifname, std::strerror(errno));
        return;
    }
    if (req.ifr_flags & IFF_UP) return;
    req.ifr_flags |= IFF_UP;
    if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) < 0)
        spdlog::warn("tap:{}: cannot bring the interface up ({}); bring it up yourself", ifname, std::strerror(errno));
}

class TapBackend final : public LoopBackend {
public:
    explicit TapBackend(const TapSpec& spec) : ifname_(spec.ifname), fd_(open_tap(spec.ifname)), rx_buffer_(kMaxFrame) {
        bring_up(ifname_);
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
            tx_frames_.add();
            tx_bytes_.add(frame.size());
            return SendResult::Sent;
        }
        if (n < 0 && errno != EAGAIN && tx_log_.allow())
            spdlog::warn("tap:{}: write: {} (frame dropped)", ifname_, std::strerror(errno));
        return drop(frame);
    }

    void rx_space_available() override {}  // lossy: nothing is held back

    Counters counters() const override {
        return {{"tx_frames", tx_frames_.get()}, {"tx_bytes", tx_bytes_.get()},
                {"tx_dropped", tx_dropped_.get()}, {"rx_frames", rx_frames_.get()},
                {"rx_bytes", rx_bytes_.get()},     {"rx_dropped", rx_dropped_.get()}};
    }

    std::string describe() const override { return "tap:" + ifname_; }

private:
    SendResult drop(std::span<const std::uint8_t>) {
        tx_dropped_.add();
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
                rx_frames_.add();
                rx_bytes_.add(std::size_t(n));
            } else {
                rx_dropped_.add();
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
    Counter tx_frames_, tx_bytes_, tx_dropped_, rx_frames_, rx_bytes_, rx_dropped_;
    LogLimiter tx_log_, rx_log_;
};

}  // namespace

std::unique_ptr<Backend> make_tap_backend(const TapSpec& spec) {
    return std::make_unique<OwnedBackend>(std::make_shared<TapBackend>(spec));
}

}  // namespace xover::net
