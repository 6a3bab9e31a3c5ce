// The VM end of the broker's slow-path switch (see broker_backend.hpp).
#include "xover/crossover/broker_backend.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>

#include "xover/crossover/broker.hpp"
#include "xover/error.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::crossover {

std::filesystem::path switch_socket_path(const std::filesystem::path& broker_socket) {
    return broker_socket.string() + ".switch";
}

std::vector<std::uint8_t> SwitchHello::encode() const {
    std::vector<std::uint8_t> out(16 + vm.size());
    std::memcpy(out.data(), &kMagic, 4);
    std::memcpy(out.data() + 4, &nic, 4);
    std::memcpy(out.data() + 8, mac.bytes.data(), 6);
    std::memcpy(out.data() + 16, vm.data(), vm.size());
    return out;
}

std::optional<SwitchHello> SwitchHello::decode(std::span<const std::uint8_t> p) {
    std::uint32_t magic = 0;
    if (p.size() < 16 || p.size() > 16 + 256) return std::nullopt;
    std::memcpy(&magic, p.data(), 4);
    if (magic != kMagic) return std::nullopt;
    SwitchHello h;
    std::memcpy(&h.nic, p.data() + 4, 4);
    std::memcpy(h.mac.bytes.data(), p.data() + 8, 6);
    h.vm.assign(reinterpret_cast<const char*>(p.data()) + 16, p.size() - 16);
    return h;
}

namespace {

constexpr std::size_t kMaxFrame = 65536;

// The port's counters (net/counter_set.hpp).
#define XOVER_BROKER_BACKEND_COUNTERS(X, V)                                            \
    X(tx_frames, "frames sent to the broker's switch")                                \
    X(tx_bytes, "bytes of tx_frames")                                                 \
    X(tx_busy, "sends answered Busy: the socket was full (the frame waits)")          \
    X(tx_dropped, "frames dropped: the broker is gone or the socket failed")          \
    X(rx_frames, "frames from the switch delivered to the NIC")                       \
    X(rx_bytes, "bytes of rx_frames")                                                 \
    X(rx_stalls, "times reading paused: the guest had no free RX buffer")
struct Stats {
    XOVER_COUNTER_SET(XOVER_BROKER_BACKEND_COUNTERS, "", net::Counter)
};

// Shared with the loop's callbacks (which may outlive the NIC's handle by
// one run): the handle marks it dead and posts the unwatch.
class BrokerPort final : public std::enable_shared_from_this<BrokerPort> {
public:
    BrokerPort(kvm::UniqueFd fd, std::string description) : fd_(std::move(fd)), description_(std::move(description)) {}

    void start(vmm::EventLoop& loop, net::FrameReceiver& receiver, std::function<void()> tx_ready) {
        loop_ = &loop;
        receiver_ = &receiver;
        tx_ready_ = std::move(tx_ready);
        loop.watch(fd_.get(), vmm::EventLoop::Interest::Readable, guarded([this] { on_readable(); }));
    }

    // NIC lock held (vCPU or I/O thread).
    net::Backend::SendResult send(std::span<const std::uint8_t> frame) {
        using R = net::Backend::SendResult;
        if (!connected_.load(std::memory_order_acquire)) {
            stats_.tx_dropped.add();
            return R::Dropped;
        }
        for (;;) {
            ssize_t n = ::send(fd_.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n >= 0) {
                stats_.tx_frames.add();
                stats_.tx_bytes.add(frame.size());
                return R::Sent;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // Wake the NIC when the broker has read some: the loop
                // watches for writability until then.
                stats_.tx_busy.add();
                if (!writable_watched_.exchange(true) && loop_)
                    loop_->watch(fd_.get(), vmm::EventLoop::Interest::Writable, guarded([this] { on_writable(); }));
                return R::Busy;
            }
            stats_.tx_dropped.add();
            return R::Dropped;  // the broker is gone: on_readable() notices the hang-up
        }
    }

    void rx_space_available() {
        if (!rx_blocked_.load(std::memory_order_acquire) || !loop_) return;
        if (!resume_posted_.exchange(true)) loop_->post(guarded([this] { resume_rx(); }));
    }

    bool link_up() const { return connected_.load(std::memory_order_acquire); }

    net::Counters counters() const {
        net::Counters out;
        stats_.append_to(out);
        return out;
    }
    const std::string& describe() const { return description_; }

    void kill() {
        dead_.store(true);
        if (loop_) loop_->post([self = shared_from_this()] { self->close_on_loop(); });
    }

private:
    template <typename F>
    vmm::EventLoop::Callback guarded(F action) {
        return [weak = weak_from_this(), action = std::move(action)] {
            auto self = weak.lock();
            if (self && !self->dead_.load(std::memory_order_relaxed)) action();
        };
    }

    void close_on_loop() {
        if (!watching_) return;
        watching_ = false;
        loop_->unwatch(fd_.get(), vmm::EventLoop::Interest::Readable);
        if (writable_watched_.exchange(false)) loop_->unwatch(fd_.get(), vmm::EventLoop::Interest::Writable);
    }

    void on_writable() {
        if (writable_watched_.exchange(false)) loop_->unwatch(fd_.get(), vmm::EventLoop::Interest::Writable);
        if (tx_ready_) tx_ready_();
    }

    // Delivers the held frame, then everything queued; stops at a full RX ring.
    void on_readable() {
        if (held_ && !deliver_held()) return;
        for (;;) {
            ssize_t n = ::recv(fd_.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n <= 0) {
                if (connected_.exchange(false)) {
                    spdlog::warn("{}: the broker went away; link down", description_);
                    close_on_loop();
                    receiver_->link_state_changed();
                }
                return;
            }
            held_ = std::size_t(n);
            if (!deliver_held()) return;
        }
    }

    bool deliver_held() {
        rx_blocked_.store(true, std::memory_order_release);  // before deliver: a refusal is always seen
        if (!receiver_->deliver({buffer_.data(), held_})) {
            stats_.rx_stalls.add();
            if (watching_) {
                watching_ = false;
                loop_->unwatch(fd_.get(), vmm::EventLoop::Interest::Readable);
            }
            return false;
        }
        rx_blocked_.store(false, std::memory_order_release);
        stats_.rx_frames.add();
        stats_.rx_bytes.add(held_);
        held_ = 0;
        return true;
    }

    void resume_rx() {
        resume_posted_.store(false);
        if (watching_ || !connected_.load()) return;
        if (held_ && !deliver_held()) return;
        watching_ = true;
        loop_->watch(fd_.get(), vmm::EventLoop::Interest::Readable, guarded([this] { on_readable(); }));
    }

    kvm::UniqueFd fd_;
    std::string description_;
    vmm::EventLoop* loop_ = nullptr;
    net::FrameReceiver* receiver_ = nullptr;
    std::function<void()> tx_ready_;
    std::atomic<bool> dead_{false}, connected_{true}, writable_watched_{false};
    std::atomic<bool> rx_blocked_{false}, resume_posted_{false};
    bool watching_ = true;  // readable watch (I/O thread only)
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(kMaxFrame);
    std::size_t held_ = 0;  // a received frame the NIC has not taken yet
    Stats stats_;
};

class BrokerBackend final : public net::Backend {
public:
    explicit BrokerBackend(std::shared_ptr<BrokerPort> port) : port_(std::move(port)) {}
    ~BrokerBackend() override { port_->kill(); }
    void start(vmm::EventLoop& loop, net::FrameReceiver& receiver, std::function<void()> tx_ready) override {
        port_->start(loop, receiver, std::move(tx_ready));
    }
    SendResult send(std::span<const std::uint8_t> frame) override { return port_->send(frame); }
    void rx_space_available() override { port_->rx_space_available(); }
    bool link_up() const override { return port_->link_up(); }
    net::Counters counters() const override { return port_->counters(); }
    std::string describe() const override { return port_->describe(); }

private:
    std::shared_ptr<BrokerPort> port_;
};

}  // namespace

std::unique_ptr<net::Backend> make_broker_backend(const std::filesystem::path& broker_socket, const std::string& vm,
                                                  std::uint32_t nic, const net::MacAddress& mac) {
    // The control socket first: that starts a broker if none runs (and
    // proves it listens, so its switch socket exists too).
    { kvm::UniqueFd control = ensure_broker(broker_socket); }
    const std::string path = switch_socket_path(broker_socket).string();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw Error("broker switch socket path '{}' is too long", path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    kvm::UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) throw system_error("socket(AF_UNIX, SOCK_SEQPACKET)");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw system_error(fmt::format("backend broker: connecting to the broker's switch {}", path));
    auto hello = SwitchHello{vm, nic, mac}.encode();
    if (::send(fd.get(), hello.data(), hello.size(), MSG_NOSIGNAL) != ssize_t(hello.size()))
        throw system_error(fmt::format("backend broker: greeting the switch {}", path));
    std::string description = fmt::format("broker:{}", path);
    spdlog::info("{}.nic{}: backend {} ({})", vm, nic, description, mac.to_string());
    return std::make_unique<BrokerBackend>(std::make_shared<BrokerPort>(std::move(fd), std::move(description)));
}

}  // namespace xover::crossover
