// udp:[LHOST:]LPORT@RHOST:RPORT — one frame per datagram, no header: the
// format of QEMU's "-netdev dgram,local...,remote..." and of the older
// "-netdev socket,udp=RHOST:RPORT,localaddr=LHOST:LPORT".
//
// The socket binds LHOST:LPORT, or the wildcard address of RHOST's family
// when LHOST is omitted, and is not connect()ed: like QEMU it accepts
// datagrams from any sender and sends with sendto() to RHOST:RPORT, so it
// never sees ICMP "port unreachable" errors from a peer that is not up yet.
//
// Lossy on purpose (UDP is): a full socket buffer or any send error drops
// and counts the frame (Dropped, never Busy). When the NIC has no buffer,
// reading pauses (the refused datagrams are kept) until
// rx_space_available(), as QEMU does: the 4 MiB receive buffer absorbs a
// guest that falls behind for a moment (a descheduled vCPU), and the kernel
// drops only what overflows it.
// TX is a direct sendto() from the NIC's thread; RX is recvmmsg() batches on
// the I/O thread.
#include "udp_backend.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "loop_backend.hpp"
#include "socket_address.hpp"
#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::net {
namespace {

constexpr std::size_t kMaxDatagram = 65536;  // larger than any UDP payload, so MSG_TRUNC means "too big"
constexpr unsigned kBatch = 16;              // datagrams per recvmmsg()
constexpr int kBatchesPerWakeup = 4;
constexpr int kSocketBuffer = 4 << 20;

void set_buffer(int fd, int force_option, int option, const char* name) {
    int size = kSocketBuffer;
    // The *FORCE variants exceed net.core.[rw]mem_max but need CAP_NET_ADMIN.
    if (::setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof size) == 0) return;
    if (::setsockopt(fd, SOL_SOCKET, option, &size, sizeof size) < 0)
        spdlog::debug("udp: setsockopt {}: {}", name, std::strerror(errno));
}

// The backend's counters (net/counter_set.hpp).
#define XOVER_UDP_BACKEND_COUNTERS(X, V)                                          \
    X(tx_frames, "datagrams sent, one frame each")                               \
    X(tx_bytes, "bytes of tx_frames")                                            \
    X(tx_dropped, "frames the socket refused (dropped: UDP is lossy)")           \
    X(rx_frames, "datagrams delivered to the NIC")                               \
    X(rx_bytes, "bytes of rx_frames")                                            \
    X(rx_stalls, "times reading paused: the guest had no free RX buffer")        \
    X(rx_oversize, "datagrams larger than the receive buffer (dropped)")
struct Stats {
    XOVER_COUNTER_SET(XOVER_UDP_BACKEND_COUNTERS, "", Counter)
};

class UdpBackend final : public LoopBackend {
public:
    explicit UdpBackend(const UdpSpec& spec) : rx_buffers_(kBatch * kMaxDatagram) {
        std::string desc = describe_spec(spec);
        remote_ = resolve(spec.remote, SOCK_DGRAM, desc + ": remote address");
        SocketAddress local = spec.local_host
                                  ? resolve(HostPort{*spec.local_host, spec.local_port}, SOCK_DGRAM, desc + ": local address")
                                  : any_address(remote_.family(), spec.local_port);
        if (local.family() != remote_.family())
            throw Error("{}: local {} and remote {} are different address families", desc, local.to_string(),
                        remote_.to_string());
        fd_ = kvm::UniqueFd(::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd_) throw system_error(desc + ": socket");
        if (::bind(fd_.get(), local.get(), local.length) < 0)
            throw system_error(fmt::format("{}: bind {}", desc, local.to_string()));
        set_buffer(fd_.get(), SO_RCVBUFFORCE, SO_RCVBUF, "SO_RCVBUF");
        set_buffer(fd_.get(), SO_SNDBUFFORCE, SO_SNDBUF, "SO_SNDBUF");
        description_ = fmt::format("udp:{}@{}", local.to_string(), remote_.to_string());

        for (unsigned i = 0; i < kBatch; ++i) {
            iovs_[i] = iovec{rx_buffers_.data() + i * kMaxDatagram, kMaxDatagram};
            msgs_[i].msg_hdr = msghdr{};
            msgs_[i].msg_hdr.msg_iov = &iovs_[i];
            msgs_[i].msg_hdr.msg_iovlen = 1;
        }
    }

    void start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()>) override {
        attach(loop);
        receiver_ = &receiver;
        loop.watch(fd_.get(), vmm::EventLoop::Interest::Readable, guarded([this] { on_readable(); }));
    }

    SendResult send(std::span<const std::uint8_t> frame) override {
        ssize_t n = ::sendto(fd_.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL, remote_.get(),
                             remote_.length);
        if (n == ssize_t(frame.size())) {
            stats_.tx_frames.add();
            stats_.tx_bytes.add(frame.size());
            return SendResult::Sent;
        }
        if (n < 0 && errno != EAGAIN && errno != ENOBUFS && tx_log_.allow())
            spdlog::warn("{}: sendto: {} (frame dropped)", description_, std::strerror(errno));
        stats_.tx_dropped.add();
        return SendResult::Dropped;
    }

    Counters counters() const override {
        Counters out;
        stats_.append_to(out);
        return out;
    }

    std::string describe() const override { return description_; }

private:
    static std::string describe_spec(const UdpSpec& spec) {
        return fmt::format("udp:{}{}@{}:{}", spec.local_host ? *spec.local_host + ":" : "", spec.local_port,
                           spec.remote.host, spec.remote.port);
    }

    void on_readable() {
        if (!deliver_held()) return;
        for (int batch = 0; batch < kBatchesPerWakeup; ++batch) {
            int n = ::recvmmsg(fd_.get(), msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR && rx_log_.allow())
                    spdlog::warn("{}: recvmmsg: {}", description_, std::strerror(errno));
                return;
            }
            held_next_ = 0;
            held_end_ = unsigned(n);
            if (!deliver_held()) return;
            if (unsigned(n) < kBatch) return;  // drained
        }
    }

    // Hands the received datagrams [held_next_, held_end_) to the NIC.
    // Returns false when it is full: reading pauses, the rest stays held.
    bool deliver_held() {
        for (; held_next_ < held_end_; ++held_next_) {
            mmsghdr& m = msgs_[held_next_];
            if (m.msg_hdr.msg_flags & MSG_TRUNC) {
                stats_.rx_oversize.add();
                m.msg_hdr.msg_flags = 0;
                continue;
            }
            auto frame = std::span<const std::uint8_t>(rx_buffers_.data() + held_next_ * kMaxDatagram, m.msg_len);
            if (!deliver_frame(*receiver_, frame)) {
                pause_rx();
                return false;
            }
            stats_.rx_frames.add();
            stats_.rx_bytes.add(m.msg_len);
        }
        return true;
    }

    void pause_rx() {
        if (rx_paused_) return;
        rx_paused_ = true;
        stats_.rx_stalls.add();
        loop().unwatch(fd_.get(), vmm::EventLoop::Interest::Readable);
    }

    void resume_rx() override {
        if (!rx_paused_) return;
        rx_paused_ = false;
        if (!deliver_held()) return;
        loop().watch(fd_.get(), vmm::EventLoop::Interest::Readable, guarded([this] { on_readable(); }));
    }

    void close_on_loop() override {
        if (attached() && !rx_paused_) loop().unwatch(fd_.get(), vmm::EventLoop::Interest::Readable);
    }

    SocketAddress remote_;
    kvm::UniqueFd fd_;
    std::string description_;
    FrameReceiver* receiver_ = nullptr;
    std::vector<std::uint8_t> rx_buffers_;
    std::array<iovec, kBatch> iovs_{};
    std::array<mmsghdr, kBatch> msgs_{};
    // Loop-thread state: datagrams received but not yet taken by the NIC.
    unsigned held_next_ = 0, held_end_ = 0;
    bool rx_paused_ = false;
    Stats stats_;
    vmm::RateLimitedLog tx_log_{1}, rx_log_{1};  // one line a second each
};

}  // namespace

std::unique_ptr<Backend> make_udp_backend(const UdpSpec& spec) {
    return std::make_unique<OwnedBackend>(std::make_shared<UdpBackend>(spec));
}

}  // namespace xover::net
