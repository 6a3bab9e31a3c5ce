// Builds a NIC from its NicConfig: the backend (its physical path), the
// device model, and the KVM-side plumbing the model itself must not know
// about — a timerfd for the e1000's interrupt delays, ioeventfds for the
// virtio-net notify addresses.
#include "nic_factory.hpp"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <array>

#include <spdlog/spdlog.h>

#include "xover/e1000/e1000.hpp"
#include "xover/error.hpp"
#include "xover/kvm/event_fd.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/virtio_net/virtio_net.hpp"

namespace xover::cli {

namespace {

// Base-from-member: the backend must exist before the device that holds a
// reference to it, and is stopped before the device goes away.
struct BackendOwner {
    explicit BackendOwner(const vmm::NicConfig& config) : backend(net::make_backend(config.backend)) {}
    std::unique_ptr<net::Backend> backend;
};

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
}

class E1000Nic final : private BackendOwner, public e1000::E1000 {
public:
    E1000Nic(const vmm::NicConfig& config, const net::MacAddress& mac, vmm::NicContext& context)
        : BackendOwner(config),
          E1000(context.memory, context.intx, *backend, mac, fmt::format("{}.nic{}", context.vm_name, context.index)),
          loop_(context.loop) {
        int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0) throw system_error("timerfd_create for the e1000 interrupt timer");
        timer_.reset(fd);
        // ITR throttling and the RX/TX interrupt delays: one absolute-time
        // timerfd, re-armed by the device, fired on the I/O thread.
        set_interrupt_timer({monotonic_ns, [fd](std::uint64_t deadline) {
                                 itimerspec spec{};
                                 spec.it_value.tv_sec = time_t(deadline / 1'000'000'000ull);
                                 spec.it_value.tv_nsec = long(deadline % 1'000'000'000ull);
                                 if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
                                 ::timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, nullptr);
                             }});
        loop_.watch(fd, vmm::EventLoop::Interest::Readable, [this, fd] {
            std::uint64_t expirations;
            if (::read(fd, &expirations, sizeof expirations) > 0) on_timer();
        });
        backend->start(context.loop, *this, [this] { resume_tx(); });
    }
    ~E1000Nic() override {
        backend.reset();
        loop_.unwatch(timer_.get(), vmm::EventLoop::Interest::Readable);
    }

private:
    vmm::EventLoop& loop_;
    kvm::UniqueFd timer_;
};

class VirtioNetNic final : private BackendOwner, public virtio_net::VirtioNet {
public:
    VirtioNetNic(const vmm::NicConfig& config, const net::MacAddress& mac, vmm::NicContext& context)
        : BackendOwner(config),
          VirtioNet(context.memory, context.make_msi(kMsixVectors), context.intx, *backend, mac),
          vm_(context.vm),
          loop_(context.loop) {
        for (unsigned q = 0; q < kQueueCount; ++q) {
            notifiers_[q] = kvm::EventFd::create();
            int fd = notifiers_[q].fd();
            loop_.watch(fd, vmm::EventLoop::Interest::Readable, [this, q] {
                notifiers_[q].drain();
                queue_notify(q);
            });
        }
        backend->start(context.loop, *this, [this] { resume_tx(); });
    }
    ~VirtioNetNic() override {
        backend.reset();
        unregister_notifiers();
        for (auto& n : notifiers_) loop_.unwatch(n.fd(), vmm::EventLoop::Interest::Readable);
    }

    // A queue notify is a guest MMIO write that KVM turns into an eventfd
    // signal (no exit to userspace); follow the BAR wherever it is mapped.
    void bars_mapped() override {
        std::uint64_t base = bar_decodes(notify_bar()) ? bar_address(notify_bar()) : 0;
        if (base == registered_base_) return;
        unregister_notifiers();
        if (base == 0) return;
        for (unsigned q = 0; q < kQueueCount; ++q) vm_.add_ioeventfd(notifiers_[q].fd(), base + notify_offset(q), 0, false);
        registered_base_ = base;
    }

private:
    static constexpr unsigned kMsixVectors = 3;

    void unregister_notifiers() {
        if (registered_base_ == 0) return;
        for (unsigned q = 0; q < kQueueCount; ++q) {
            try {
                vm_.remove_ioeventfd(notifiers_[q].fd(), registered_base_ + notify_offset(q), 0, false);
            } catch (const std::exception& e) {
                spdlog::warn("virtio-net: removing a notify ioeventfd: {}", e.what());
            }
        }
        registered_base_ = 0;
    }

    kvm::Vm& vm_;
    vmm::EventLoop& loop_;
    std::array<kvm::EventFd, kQueueCount> notifiers_;
    std::uint64_t registered_base_ = 0;
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_nic(const vmm::NicConfig& config, vmm::NicContext& context) {
    net::MacAddress mac = config.mac ? *config.mac : net::MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, std::uint8_t(0x56 + context.index)}};
    if (config.model == "e1000") return std::make_unique<E1000Nic>(config, mac, context);
    if (config.model == "virtio-net") return std::make_unique<VirtioNetNic>(config, mac, context);
    throw Error("--nic {}: unknown NIC model (expected e1000 or virtio-net)", config.model);
}

}  // namespace xover::cli
