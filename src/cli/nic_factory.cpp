// Builds a NIC from its NicConfig: the backend (its physical path), the
// device model, and the KVM-side plumbing the model itself must not know
// about — a timerfd for the e1000's interrupt delays, ioeventfds for the
// virtio-net notify addresses — and, for a NIC with a crossover
// configuration, its crossover port: shared state page, doorbell, the
// eventfd peers write to interrupt it, and its registration with the
// broker (all of a VM's crossover NICs register together, at the last).
#include "nic_factory.hpp"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <array>

#include <spdlog/spdlog.h>

#include "xover/crossover/crossover_port.hpp"
#include "xover/crossover/vm_agent.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/error.hpp"
#include "xover/kvm/event_fd.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/vmm/kvm_interrupts.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::cli {

namespace {

// Base-from-member: the backend must exist before the device that holds a
// reference to it, and is stopped before the device goes away.
struct BackendOwner {
    explicit BackendOwner(const vmm::NicConfig& config) : backend(net::make_backend(config.backend)) {}
    std::unique_ptr<net::Backend> backend;
};

// The crossover side of one NIC (only for NICs with a crossover
// configuration): owns the port, watches its doorbell (a peer returned RX
// buffers we were waiting for: resume transmit), registers with the broker
// through the process's agent, and applies links to the model under its
// lock. `Model` is E1000 or VirtioNet.
template <class Model>
class CrossoverAttachment final : public crossover::LinkedNic {
public:
    CrossoverAttachment(Model& model, const vmm::NicConfig& config, const net::MacAddress& mac,
                        vmm::NicContext& context, net::Backend& backend, std::uint32_t model_id, int irq_fd)
        : model_(model), loop_(context.loop), index_(context.index) {
        auto* ram = dynamic_cast<vmm::RamMemory*>(&context.memory);
        if (!ram) throw Error("--nic {}: crossover needs the VM's RAM memfd", config.model);
        std::string name = fmt::format("{}.nic{}", context.vm_name, context.index);
        port_ = std::make_unique<crossover::CrossoverPort>(name, model_id, backend, config.backend == "none");
        int doorbell = port_->doorbell().fd();
        loop_.watch(doorbell, vmm::EventLoop::Interest::Readable, [this] {
            port_->doorbell().drain();
            model_.resume_tx();
        });
        bool is_auto = config.crossover.size() == 1 && config.crossover[0] == "auto";
        if (is_auto) {
            unsigned index = index_;
            port_->set_frame_seen_reporter([index](const net::MacAddress& dst) {
                crossover::VmAgent::instance().report_frame_seen(index, dst);
            });
        }
        model_.attach_crossover(*port_);

        crossover::NicRegistration reg;
        reg.index = index_;
        reg.mac = mac;
        reg.model = config.model;
        if (!is_auto) reg.peers = config.crossover;
        reg.auto_peer = is_auto;
        reg.mode = crossover::parse_link_mode(config.crossover_mode).value_or(crossover::LinkMode::Copy);
        if (reg.mode == crossover::LinkMode::Window) {
            spdlog::warn("{}: crossover window mode is not implemented yet; using copy mode", name);
            reg.mode = crossover::LinkMode::Copy;
        }
        reg.ram_size = ram->size();
        reg.ram = crossover::dup_for_broker(ram->memfd());
        reg.state = port_->page().dup_fd();
        reg.irq = crossover::dup_for_broker(irq_fd);
        reg.doorbell = crossover::dup_for_broker(doorbell);
        auto& agent = crossover::VmAgent::instance();
        agent.add_nic(std::move(reg), *this);
        registered_ = true;
        if (is_last_crossover_nic(context)) {
            const vmm::VmConfig& vm = *context.vm_config;
            agent.register_vm(vm.name, vm.broker.value_or(crossover::default_broker_path()), loop_);
        }
    }
    ~CrossoverAttachment() override {
        if (registered_) crossover::VmAgent::instance().remove_nic(index_);
        if (port_) loop_.unwatch(port_->doorbell().fd(), vmm::EventLoop::Interest::Readable);
    }

    void crossover_link_up(std::shared_ptr<crossover::PeerLink> link) override {
        model_.run_locked([&] { port_->add_link(std::move(link)); });
        model_.link_changed();
    }
    void crossover_link_down(std::uint64_t link_id) override {
        std::shared_ptr<crossover::PeerLink> gone;
        model_.run_locked([&] { gone = port_->remove_link(link_id); });
        gone.reset();  // unmaps the peer, outside the device lock
        model_.link_changed();
    }

private:
    static bool is_last_crossover_nic(const vmm::NicContext& context) {
        if (!context.vm_config) return true;
        const auto& nics = context.vm_config->nics;
        for (std::size_t i = context.index + 1; i < nics.size(); ++i)
            if (!nics[i].crossover.empty()) return false;
        return true;
    }

    Model& model_;
    vmm::EventLoop& loop_;
    unsigned index_;
    std::unique_ptr<crossover::CrossoverPort> port_;
    bool registered_ = false;
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
        if (!config.crossover.empty()) {
            auto* line = dynamic_cast<vmm::IrqfdLevelLine*>(&context.intx);
            if (!line) throw Error("--nic e1000: crossover needs an irqfd INTx line");
            // Peers write the INTx trigger eventfd: the line goes up
            // without an exit; the guest's EOI (resample) lowers it.
            crossover_ = std::make_unique<CrossoverAttachment<e1000::E1000>>(*this, config, mac, context, *backend,
                                                                              0, line->trigger_fd());
        }
        backend->start(context.loop, *this, [this] { resume_tx(); });
    }
    ~E1000Nic() override {
        crossover_.reset();
        backend.reset();
        loop_.unwatch(timer_.get(), vmm::EventLoop::Interest::Readable);
    }

private:
    vmm::EventLoop& loop_;
    kvm::UniqueFd timer_;
    std::unique_ptr<CrossoverAttachment<e1000::E1000>> crossover_;
};

// Base-from-member: the MSI-X controller exists before the device that
// fires it, and the crossover needs its RX vector's eventfd.
struct MsiOwner {
    MsiOwner(vmm::NicContext& context, unsigned vectors) : msi(context.make_msi(vectors)) {}
    vmm::MsiController& msi;
};

class VirtioNetNic final : private BackendOwner, private MsiOwner, public virtio_net::VirtioNet {
public:
    VirtioNetNic(const vmm::NicConfig& config, const net::MacAddress& mac, vmm::NicContext& context)
        : BackendOwner(config),
          MsiOwner(context, kMsixVectors),
          VirtioNet(context.memory, msi, context.intx, *backend, mac),
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
        if (!config.crossover.empty()) {
            // Peers write the RX vector's irqfd directly (see
            // VirtioNet::kCrossoverRxVector for what that assumes).
            crossover_ = std::make_unique<CrossoverAttachment<virtio_net::VirtioNet>>(
                *this, config, mac, context, *backend, 1, msi.eventfd(kCrossoverRxVector));
        }
        backend->start(context.loop, *this, [this] { resume_tx(); });
    }
    ~VirtioNetNic() override {
        crossover_.reset();
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
    std::unique_ptr<CrossoverAttachment<virtio_net::VirtioNet>> crossover_;
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_nic(const vmm::NicConfig& config, vmm::NicContext& context) {
    net::MacAddress mac = config.mac ? *config.mac : net::MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, std::uint8_t(0x56 + context.index)}};
    if (config.model == "e1000") return std::make_unique<E1000Nic>(config, mac, context);
    if (config.model == "virtio-net") return std::make_unique<VirtioNetNic>(config, mac, context);
    throw Error("--nic {}: unknown NIC model (expected e1000 or virtio-net)", config.model);
}

}  // namespace xover::cli
