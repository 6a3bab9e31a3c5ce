// A virtio-net NIC whose queues an external vhost-user back-end serves
// (--nic virtio-net,backend=vhost-user:PATH[,server]): xover keeps the
// virtio-pci transport the guest drives (features, status, queue
// registers, MSI-X) and hands the rings to the back-end when the driver
// starts them. The guest's RAM goes to the back-end as the memory table
// (its memfd), a queue's kick is the ioeventfd KVM signals on its notify
// address, and its call is the irqfd of the queue's MSI-X vector while
// the guest would take that message (no exit, no wake-up of this
// process). While the vector is masked, or the driver uses INTx, the call
// is an eventfd the I/O thread turns into the pending bit or the INTx
// level, as the transport says. No frame passes through xover.
//
// The back-end may go away: the link then reads down (a configuration
// interrupt), and xover connects again (client: every second; server:
// the next connection), sends the set-up again and continues each ring
// from its used index, as QEMU does.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <array>
#include <cstring>
#include <optional>

#include <linux/virtio_ids.h>
#include <spdlog/spdlog.h>

#include "msi_owner.hpp"
#include "queue_notify_fds.hpp"
#include "nic_setup.hpp"
#include "xover/devices/vhost_user_net_counters.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/error.hpp"
#include "xover/kvm/event_fd.hpp"
#include "xover/unix_listener.hpp"
#include "xover/vhost_user/frontend.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/virtio_net/virtio_pci_device.hpp"
#include "xover/virtio_net/virtio_spec.hpp"

namespace xover::devices {

namespace {

namespace spec = virtio_net::spec;
using virtio_net::VirtioNet;
using virtio_net::VirtioPciDevice;

constexpr unsigned kQueues = 2;  // RX, TX: one pair, no control queue
constexpr std::uint16_t kQueueSize = 256;
constexpr unsigned kVectors = 3;
constexpr std::chrono::seconds kReconnectPeriod{1};
constexpr std::chrono::seconds kServerWait{30};

// What the back-end's features may add to the device's (the transport's
// VERSION_1, INDIRECT_DESC and EVENT_IDX it must have).
constexpr std::uint64_t kFromBackend = (1ull << spec::net::kFeatureCsum) | (1ull << spec::net::kFeatureGuestCsum) |
                                       (1ull << spec::net::kFeatureMrgRxbuf);
// What the device itself answers (config space), never sent to the back-end.
constexpr std::uint64_t kOwn = (1ull << spec::net::kFeatureMac) | (1ull << spec::net::kFeatureStatus);

class VhostUserNetNic final : private MsiOwner, public VirtioPciDevice {
public:
    VhostUserNetNic(const NicSetup& setup, vmm::NicContext& context, const net::VhostUserSpec& spec)
        : MsiOwner(context, kVectors),
          VirtioPciDevice(Identity{.virtio_device_id = VIRTIO_ID_NET, .class_code = 0x020000, .subsystem = 1},
                          kQueues, kQueueSize, context.memory, msi, context.intx),
          name_(setup.name),
          spec_(spec),
          mac_(setup.mac),
          loop_(context.loop),
          vm_(context.vm),
          memory_(context.memory),
          kicks_(context.vm, *this, setup.name) {
        if (!context.memory.ram_file()) throw Error("{}: a vhost-user back-end needs the VM's RAM memfd", name_);
        for (auto& call : calls_) call = kvm::EventFd::create();
        reconnect_timer_ = kvm::UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (!reconnect_timer_) throw system_error("timerfd_create (vhost-user reconnect)");
        if (spec_.server) listener_ = listen_unix_stream(spec_.path, "vhost-user socket", 1);
        // Nothing is watched on the loop until here: a constructor that
        // throws leaves no callback to a device that never was.
        connect_first();
        for (unsigned q = 0; q < kQueues; ++q)
            loop_.watch(calls_[q].fd(), vmm::EventLoop::Interest::Readable, [this, q] { called(q); });
        int timer = reconnect_timer_.get();
        loop_.watch(timer, vmm::EventLoop::Interest::Readable, [this, timer] {
            std::uint64_t n;
            if (::read(timer, &n, sizeof n) > 0) try_reconnect();
        });
        if (listener_) {
            loop_.watch(listener_.get(), vmm::EventLoop::Interest::Readable, [this] { try_reconnect(); });
        }
    }

    ~VhostUserNetNic() override {
        for (auto& c : calls_) loop_.unwatch(c.fd(), vmm::EventLoop::Interest::Readable);
        loop_.unwatch(reconnect_timer_.get(), vmm::EventLoop::Interest::Readable);
        if (listener_) {
            loop_.unwatch(listener_.get(), vmm::EventLoop::Interest::Readable);
            ::unlink(spec_.path.c_str());
        }
        std::lock_guard lock(mutex_);
        drop_backend_locked();
    }

    // Queue notifies end in the kernel: KVM signals the kick eventfd the
    // back-end reads, on the notify address wherever the BAR is.
    void bars_mapped() override { kicks_.follow_bar(); }

    std::vector<std::pair<std::string, std::uint64_t>> counters() const override {
        std::lock_guard lock(mutex_);
        net::Counters out;
        stats_.append_to(out);
        append_transport_counters(out);
        return out;
    }

private:
    std::uint64_t device_features() const override { return (backend_features_ & kFromBackend) | kOwn; }

    void read_device_config(std::uint64_t offset, std::span<std::uint8_t> data) override {
        VirtioNet::net_config(mac_, frontend_.has_value(), offset, data);
    }

    // A notify that exited to userspace (no ioeventfd yet): the same kick.
    void queue_notified(unsigned q) override { kicks_[q].signal(); }

    void activated() override { start_rings_locked(false); }

    void device_reset() override {
        if (!frontend_ || !started_) return;
        try {
            for (unsigned q = 0; q < kQueues; ++q) frontend_->get_vring_base(q);
        } catch (const std::exception& e) {
            backend_failed_locked(e.what());
        }
        started_ = false;
    }

    // Masking, MSI-X enable or a queue's vector changed: the back-end
    // gets the call fd that now matches (with REPLY_ACK, it uses it once
    // this returns; without, a call already on its way may still reach
    // the vector just masked, as a message in flight would).
    void interrupt_routing_changed() override {
        if (!frontend_ || !started_) return;
        try {
            for (unsigned q = 0; q < kQueues; ++q) route_call_locked(q);
        } catch (const std::exception& e) {
            backend_failed_locked(e.what());
        }
    }

    // Where the back-end's call for queue q goes now: the vector's irqfd
    // while a message would be delivered, else our eventfd.
    int call_target(unsigned q) const {
        int irqfd = queue_message_deliverable(q) ? msi.eventfd(queue_vector(q)) : -1;
        return irqfd >= 0 ? irqfd : calls_[q].fd();
    }

    void route_call_locked(unsigned q) {
        int fd = call_target(q);
        if (fd == call_sent_[q]) return;
        frontend_->set_vring_call(q, fd);
        call_sent_[q] = fd;
        ++stats_.call_routes;
    }

    // The back-end signalled our eventfd for a ring (vector masked, or
    // INTx): the queue's interrupt, as the transport routes it.
    void called(unsigned q) {
        calls_[q].drain();
        std::lock_guard lock(mutex_);
        ++stats_.calls;
        if (live()) interrupt_queue(q);
    }

    void connect_first() {
        try {
            kvm::UniqueFd fd = spec_.server ? accept_within(kServerWait) : vhost_user::Frontend::connect(spec_.path);
            std::lock_guard lock(mutex_);
            adopt_locked(std::move(fd));
        } catch (const Error& e) {
            if (spec_.server) ::unlink(spec_.path.c_str());
            throw Error("{}: vhost-user back-end {}: {}", name_, spec_.path, e.what());
        }
    }

    kvm::UniqueFd accept_within(std::chrono::seconds wait) {
        spdlog::info("{}: waiting up to {} s for the vhost-user back-end on {}", name_, wait.count(), spec_.path);
        pollfd p{listener_.get(), POLLIN, 0};
        if (::poll(&p, 1, int(wait.count() * 1000)) <= 0) throw Error("no back-end connected within {} s", wait.count());
        kvm::UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd) throw system_error("accept");
        return fd;
    }

    void adopt_locked(kvm::UniqueFd fd) {
        vhost_user::Frontend frontend(std::move(fd));
        // The transport forces these; a back-end without them cannot serve the driver.
        for (unsigned bit : {spec::kFeatureIndirectDesc, spec::kFeatureEventIdx})
            if (!(frontend.features() >> bit & 1))
                throw Error("it lacks feature bit {} (indirect descriptors and event index are required)", bit);
        frontend_.emplace(std::move(frontend));
        backend_features_ = frontend_->features();
        ++stats_.connects;
        int sock = frontend_->fd();
        loop_.watch(sock, vmm::EventLoop::Interest::Readable, [this] { socket_readable(); });
        spdlog::info("{}: vhost-user back-end {} connected (features {:#x})", name_, spec_.path, backend_features_);
    }

    // Hands the rings to the back-end: at DRIVER_OK, or after a reconnect
    // (`resume`: each ring continues from its used index).
    void start_rings_locked(bool resume) {
        if (!frontend_) return;
        try {
            std::uint64_t features = 0;
            for (unsigned bit = 0; bit < 64; ++bit)
                if (negotiated(bit)) features |= 1ull << bit;
            frontend_->set_features(features & ~kOwn);
            send_memory_table_locked();
            for (unsigned q = 0; q < kQueues; ++q) {
                const virtio_net::VirtqueueLayout& l = queue(q).layout();
                frontend_->set_vring_num(q, l.size);
                frontend_->set_vring_base(q, resume ? used_index(l) : 0);
                frontend_->set_vring_addr({.index = q,
                                           .flags = 0,
                                           .desc_user_addr = host_address(l.desc, 16ull * l.size),
                                           .used_user_addr = host_address(l.used, 6 + 8ull * l.size),
                                           .avail_user_addr = host_address(l.avail, 6 + 2ull * l.size),
                                           .log_guest_addr = 0});
                frontend_->set_vring_kick(q, kicks_[q].fd());
                call_sent_[q] = -1;
                route_call_locked(q);
            }
            for (unsigned q = 0; q < kQueues; ++q) frontend_->set_vring_enable(q, true);
            started_ = true;
            ++stats_.starts;
            // Whatever the driver queued before the back-end had the rings.
            for (unsigned q = 0; q < kQueues; ++q) kicks_[q].signal();
        } catch (const std::exception& e) {
            backend_failed_locked(e.what());
        }
    }

    // The RAM as xover lays it out (vmm::layout::ram_file_offset): below
    // the hole at memfd offset = GPA, the rest from 4 GiB.
    void send_memory_table_locked() {
        vmm::RamFile ram = *memory_.ram_file();
        std::vector<vhost_user::MemoryRegion> regions;
        auto add = [&](std::uint64_t gpa, std::uint64_t offset, std::uint64_t size) {
            if (size == 0) return;
            regions.push_back({gpa, size, host_address(gpa, size), offset});
        };
        std::uint64_t low = vmm::layout::ram_below_hole(ram.size);
        add(0, 0, low);
        add(vmm::layout::kMmioHoleEnd, low, vmm::layout::ram_above_hole(ram.size));
        std::vector<int> fds(regions.size(), ram.fd);
        frontend_->set_mem_table(regions, fds);
    }

    std::uint64_t host_address(std::uint64_t gpa, std::uint64_t len) {
        std::span<std::uint8_t> s = memory_.span(gpa, len);
        if (s.empty()) throw Error("guest address {:#x} (+{}) is not in RAM", gpa, len);
        return reinterpret_cast<std::uint64_t>(s.data());
    }

    std::uint16_t used_index(const virtio_net::VirtqueueLayout& l) {
        std::uint16_t index = 0;
        memory_.read(l.used + 2, index);
        return index;
    }

    // The back-end sends nothing unasked: readable means it hung up (or
    // broke the protocol). Requests and their replies happen under the
    // device lock, so a reply is never taken for this.
    void socket_readable() {
        std::lock_guard lock(mutex_);
        if (!frontend_) return;
        std::uint8_t byte;
        ssize_t n = ::recv(frontend_->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        backend_failed_locked(n == 0 ? "it closed the connection" : "it sent a message nobody asked for");
    }

    void backend_failed_locked(const std::string& why) {
        if (!frontend_) return;
        spdlog::warn("{}: vhost-user back-end {}: {}; the link is down until it is back", name_, spec_.path, why);
        drop_backend_locked();
        ++stats_.disconnects;
        config_changed();  // link down
        if (!spec_.server) arm_reconnect();
    }

    void drop_backend_locked() {
        if (!frontend_) return;
        loop_.unwatch(frontend_->fd(), vmm::EventLoop::Interest::Readable);
        frontend_.reset();
        started_ = false;
    }

    void arm_reconnect() {
        itimerspec t{};
        t.it_value.tv_sec = kReconnectPeriod.count();
        ::timerfd_settime(reconnect_timer_.get(), 0, &t, nullptr);
    }

    void try_reconnect() {
        kvm::UniqueFd fd;
        try {
            if (spec_.server) {
                fd = kvm::UniqueFd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
                if (!fd) return;
            } else {
                fd = vhost_user::Frontend::connect(spec_.path);
            }
        } catch (const std::exception&) {
            arm_reconnect();  // not back yet
            return;
        }
        std::lock_guard lock(mutex_);
        if (frontend_) return;  // a server's second back-end: the first one stays
        try {
            adopt_locked(std::move(fd));
        } catch (const std::exception& e) {
            spdlog::warn("{}: vhost-user back-end {}: {}", name_, spec_.path, e.what());
            if (!spec_.server) arm_reconnect();
            return;
        }
        config_changed();  // link up
        if (live()) start_rings_locked(true);
    }

    std::string name_;
    net::VhostUserSpec spec_;
    net::MacAddress mac_;
    vmm::EventLoop& loop_;
    kvm::Vm* vm_;
    vmm::GuestMemory& memory_;
    kvm::UniqueFd listener_;  // server mode
    std::optional<vhost_user::Frontend> frontend_;
    std::uint64_t backend_features_ = 0;
    bool started_ = false;
    // Queue notifies end in the kernel: KVM signals the kick eventfd the
    // back-end reads, on the notify address wherever the BAR is.
    QueueNotifyFds kicks_;
    std::array<kvm::EventFd, kQueues> calls_;
    // The call fd the back-end has for each ring (-1: none sent yet).
    std::array<int, kQueues> call_sent_{-1, -1};
    kvm::UniqueFd reconnect_timer_;
    VhostUserNetCounters stats_;
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_vhost_user_net_nic(const NicSetup& setup, vmm::NicContext& context) {
    const auto& spec = std::get<net::VhostUserSpec>(setup.config.backend);
    if (setup.config.model != vmm::NicModel::VirtioNet)
        throw Error("{}: backend=vhost-user serves virtio-net queues; use --nic virtio-net,...", setup.name);
    if (!setup.config.crossover.empty())
        throw Error("{}: a NIC on a vhost-user back-end has no crossover (the back-end owns its queues)", setup.name);
    return std::make_unique<VhostUserNetNic>(setup, context, spec);
}

}  // namespace xover::devices
