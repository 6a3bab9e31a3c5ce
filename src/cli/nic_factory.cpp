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
#include <atomic>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "xover/crossover/crossover_port.hpp"
#include "xover/crossover/dma_window.hpp"
#include "xover/crossover/vm_agent.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/crossover/broker_backend.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/error.hpp"
#include "xover/kvm/event_fd.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/vmm/kvm_interrupts.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::cli {

namespace {

std::uint64_t monotonic_ns();

// The NIC's physical path. "broker" (the broker's slow-path switch) needs
// what only the VM knows: the broker socket, the VM's name, the NIC's MAC.
std::unique_ptr<net::Backend> make_nic_backend(const vmm::NicConfig& config, const net::MacAddress& mac,
                                               const vmm::NicContext& context) {
    if (!std::holds_alternative<net::BrokerSpec>(config.backend)) return net::make_backend(config.backend);
    std::filesystem::path broker = crossover::default_broker_path();
    if (context.vm_config && context.vm_config->broker) broker = *context.vm_config->broker;
    return crossover::make_broker_backend(broker, context.vm_name, context.index, mac);
}

// Base-from-member: the backend must exist before the device that holds a
// reference to it, and is stopped before the device goes away.
struct BackendOwner {
    BackendOwner(const vmm::NicConfig& config, const net::MacAddress& mac, const vmm::NicContext& context)
        : backend(make_nic_backend(config, mac, context)) {}
    std::unique_ptr<net::Backend> backend;
};

// The crossover side of one NIC (only for NICs with a crossover
// configuration): owns the port, watches its doorbell (a peer returned RX
// buffers we were waiting for: resume transmit; or placed frames whose RX
// interrupt only we may deliver), registers with the broker
// through the process's agent, and applies links to the model under its
// lock. `Model` is E1000 or VirtioNet.
template <class Model>
class CrossoverAttachment final : public crossover::LinkedNic, public net::FrameReceiver {
public:
    // `window`: the NIC's DMA window in window mode (else null; then a
    // mode=window configuration falls back to copy mode).
    CrossoverAttachment(Model& model, const vmm::NicConfig& config, const net::MacAddress& mac,
                        vmm::NicContext& context, net::Backend& backend, std::uint32_t model_id, int irq_fd,
                        crossover::DmaWindow* window = nullptr)
        : model_(model), loop_(context.loop), index_(context.index), window_(window),
          pause_(context.with_vcpus_paused) {
        auto* ram = dynamic_cast<vmm::RamMemory*>(&context.memory);
        if (!ram) throw Error("--nic {}: crossover needs the VM's RAM memfd", vmm::to_string(config.model));
        std::string name = fmt::format("{}.nic{}", context.vm_name, context.index);
        port_ = std::make_unique<crossover::CrossoverPort>(name, model_id, backend,
                                                            std::holds_alternative<net::NoneSpec>(config.backend));
        int doorbell = port_->doorbell().fd();
        loop_.watch(doorbell, vmm::EventLoop::Interest::Readable, [this] {
            port_->doorbell().drain();
            // Peers also ring it for RX interrupts only this process can
            // raise: virtio-net INTx or a vector they hold no fd for;
            // e1000 RXT0 under RDTR/RADV delay or ITR throttling.
            port_->note_doorbell_wakeup();
            model_.doorbell_rang();
        });
        port_->set_own_memory(context.memory);
        bool is_auto = config.crossover.size() == 1 && config.crossover[0] == "auto";
        if (is_auto) {
            unsigned index = index_;
            port_->set_frame_seen_reporter([index](const net::MacAddress& dst) {
                crossover::VmAgent::instance().report_frame_seen(index, dst);
            });
        }
        port_->set_window(window_);
        port_->set_own_mac(mac);
        make_retry_timer();
        model_.attach_crossover(*port_);

        crossover::NicRegistration reg;
        reg.index = index_;
        reg.mac = mac;
        reg.model = vmm::to_string(config.model);
        if (!is_auto) reg.peers = config.crossover;
        reg.auto_peer = is_auto;
        reg.mode = config.crossover_mode == vmm::CrossoverMode::Window ? crossover::LinkMode::Window
                                                                       : crossover::LinkMode::Copy;
        if (reg.mode == crossover::LinkMode::Window && !window_) {
            spdlog::warn("{}: {} has no DMA window; crossover window mode falls back to copy mode", name,
                         vmm::to_string(config.model));
            reg.mode = crossover::LinkMode::Copy;
        }
        if (reg.mode == crossover::LinkMode::Window) {
            reg.window = crossover::dup_for_broker(window_->tx_element_fd());
            reg.window_size = window_->half_size();
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
        if (retry_timer_) loop_.unwatch(retry_timer_.get(), vmm::EventLoop::Interest::Readable);
        if (registered_) crossover::VmAgent::instance().remove_nic(index_);
        if (port_) loop_.unwatch(port_->doorbell().fd(), vmm::EventLoop::Interest::Readable);
    }

    // The backend delivers through here (see slow_path_receiver()): each
    // frame it placed is counted, so that a peer switching from the slow
    // path to a link knows when nothing it sent is still on the way.
    bool deliver(std::span<const std::uint8_t> frame) override {
        if (!model_.deliver(frame)) return false;
        port_->note_slow_arrival(frame);
        return true;
    }
    void link_state_changed() override { model_.link_state_changed(); }

    // The guest moved our window BAR: it sizes every BAR while it walks the
    // bus, which may be after our window link came up (a peer started at
    // the same moment). What peers read as our RX half follows it, and
    // producers that waited for it look again.
    void window_moved() {
        if (!window_) return;
        model_.run_locked([&] {
            if (port_->window_link() == 0) return;
            port_->shared().window_rx_gpa.store(window_->half_gpa(crossover::DmaWindow::Half::Rx),
                                                std::memory_order_seq_cst);
            port_->rx_space_returned();
        });
    }

    void crossover_link_up(std::shared_ptr<crossover::PeerLink> link) override {
        bool window = link->mode == crossover::LinkMode::Window && window_ && link->peer_window_fd &&
                      port_->window_link() == 0;
        if (!window) {
            model_.run_locked([&] { port_->add_link(std::move(link)); });
            model_.link_changed();
            return;
        }
        // The remapper: with every vCPU parked and the device quiet, our TX
        // half moves onto our element (contents copied in) and our RX half
        // onto the peer's element (the peer's TX half: its contents rule).
        std::uint64_t id = link->id;
        int element = link->peer_window_fd.get();
        with_vcpus_paused([&] {
            model_.run_locked([&] {
                if (!port_->add_link(std::move(link))) return;
                try {
                    window_->attach(crossover::DmaWindow::Half::Tx, window_->tx_element_fd(), true);
                    window_->attach(crossover::DmaWindow::Half::Rx, element, false);
                } catch (const std::exception& e) {
                    spdlog::error("{}: window link {}: {}; staying in copy mode", port_->name(), id, e.what());
                    unmap_window();
                    return;
                }
                nic::SharedNicState& own = port_->shared();
                own.window_rx_gpa.store(window_->half_gpa(crossover::DmaWindow::Half::Rx), std::memory_order_release);
                own.window_rx_link.store(id, std::memory_order_seq_cst);
                port_->set_window_link(id);
                // A peer may have found our RX buffers in the window out of
                // its reach until now (see awaiting_peer_window): wake it.
                port_->rx_space_returned();
                spdlog::info("{}: window link {}: TX and RX halves remapped ({} remaps so far)", port_->name(), id,
                             window_->remaps());
            });
        });
        model_.link_changed();
    }
    void crossover_link_down(std::uint64_t link_id) override {
        std::shared_ptr<crossover::PeerLink> gone;
        bool window = window_ && port_->window_link() == link_id;
        auto apply = [&] {
            model_.run_locked([&] {
                if (window) {
                    nic::SharedNicState& own = port_->shared();
                    own.window_rx_gpa.store(0, std::memory_order_release);
                    own.window_rx_link.store(0, std::memory_order_release);
                }
                gone = port_->remove_link(link_id);
                if (window) unmap_window();
            });
        };
        if (window)
            with_vcpus_paused(apply);
        else
            apply();
        gone.reset();  // unmaps the peer, outside the device lock
        // TX slots lent to the peer complete now (the peer is gone).
        if (window) model_.resume_tx();
        model_.link_changed();
    }

private:
    // send() answered Busy while waiting for something no doorbell
    // announces (a drain, a group frame's patience): resume_tx() after
    // `delay`. Called under the device lock; one timerfd, never pushed later.
    void make_retry_timer() {
        int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0) throw system_error("timerfd_create for the crossover retry timer");
        retry_timer_.reset(fd);
        loop_.watch(fd, vmm::EventLoop::Interest::Readable, [this, fd] {
            std::uint64_t expirations;
            if (::read(fd, &expirations, sizeof expirations) <= 0) return;
            retry_due_ns_.store(0, std::memory_order_relaxed);
            model_.resume_tx();
        });
        port_->set_retry_scheduler([this, fd](std::chrono::milliseconds delay) {
            std::uint64_t due = monotonic_ns() + std::uint64_t(delay.count()) * 1'000'000ull;
            std::uint64_t armed = retry_due_ns_.load(std::memory_order_relaxed);
            if (armed != 0 && armed <= due) return;
            retry_due_ns_.store(due, std::memory_order_relaxed);
            itimerspec spec{};
            spec.it_value.tv_sec = time_t(due / 1'000'000'000ull);
            spec.it_value.tv_nsec = long(due % 1'000'000'000ull);
            ::timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, nullptr);
        });
    }

    void with_vcpus_paused(const std::function<void()>& fn) {
        if (pause_)
            pause_(fn);
        else
            fn();
    }
    // Both halves back on private memory (contents copied back).
    void unmap_window() {
        for (auto half : {crossover::DmaWindow::Half::Tx, crossover::DmaWindow::Half::Rx}) {
            try {
                window_->detach(half);
            } catch (const std::exception& e) {
                spdlog::error("{}: restoring the DMA window: {}", port_->name(), e.what());
            }
        }
    }

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
    crossover::DmaWindow* window_;
    std::function<void(const std::function<void()>&)> pause_;
    bool registered_ = false;
    kvm::UniqueFd retry_timer_;
    std::atomic<std::uint64_t> retry_due_ns_{0};
};

// Window mode: the NIC's DMA window. The model advertises it as a memory
// BAR with window_bar() — RAM for the guest: the BAR has no handler, the
// window's memory slots follow it in place_window().
std::unique_ptr<crossover::DmaWindow> make_window(const std::string& name, vmm::NicContext& context) {
    auto* ram = dynamic_cast<vmm::RamMemory*>(&context.memory);
    if (!ram) throw Error("{}: window mode needs the VM's RAM", name);
    std::uint32_t first_slot = context.memory_slots.allocate(crossover::DmaWindow::kMemorySlots, name);
    return std::make_unique<crossover::DmaWindow>(name, crossover::kDefaultWindowSize, context.vm, *ram, first_slot);
}

vmm::PciBar window_bar(const crossover::DmaWindow& window) {
    return {vmm::PciBar::Kind::Mmio32, window.size(), nullptr};
}

void place_window(crossover::DmaWindow* window, const vmm::PciDevice& device, unsigned bar, const std::string& name) {
    if (!window) return;
    try {
        window->place(device.bar_decodes(bar) ? device.bar_address(bar) : 0);
    } catch (const std::exception& e) {
        spdlog::error("{}: placing the DMA window: {}", name, e.what());
    }
}

// Where a NIC's backend delivers: through its crossover attachment when it
// has one (to count arrivals), else straight to the model.
template <class Attachment>
net::FrameReceiver& slow_path_receiver(Attachment* crossover, net::FrameReceiver& model) {
    if (crossover) return *crossover;
    return model;
}

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000ull + std::uint64_t(ts.tv_nsec);
}

class E1000Nic final : private BackendOwner, public e1000::E1000 {
public:
    E1000Nic(const vmm::NicConfig& config, const net::MacAddress& mac, vmm::NicContext& context)
        : BackendOwner(config, mac, context),
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
            if (config.crossover_mode == vmm::CrossoverMode::Window) {
                window_ = make_window(name(), context);
                define_bar(kWindowBar, window_bar(*window_));
            }
            // Peers write the INTx trigger eventfd: the line goes up
            // without an exit; the guest's EOI (resample) lowers it.
            crossover_ = std::make_unique<CrossoverAttachment<e1000::E1000>>(*this, config, mac, context, *backend,
                                                                              0, line->trigger_fd(), window_.get());
        }
        backend->start(context.loop, slow_path_receiver(crossover_.get(), *this), [this] { resume_tx(); });
    }
    ~E1000Nic() override {
        crossover_.reset();
        backend.reset();
        window_.reset();
        loop_.unwatch(timer_.get(), vmm::EventLoop::Interest::Readable);
    }

    // The window is RAM for the guest (memory slots), not MMIO: its BAR
    // has no handler, so the bus leaves it alone; the slots follow it here.
    void bars_mapped() override {
        place_window(window_.get(), *this, kWindowBar, name());
        if (crossover_) crossover_->window_moved();
    }

private:
    // BAR2: the crossover DMA window (32-bit memory, 2 MiB). The 82540EM
    // has only BAR0 (MMIO) and BAR1 (I/O); drivers ignore a third.
    static constexpr unsigned kWindowBar = 2;

    vmm::EventLoop& loop_;
    kvm::UniqueFd timer_;
    std::unique_ptr<crossover::DmaWindow> window_;
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
        : BackendOwner(config, mac, context),
          MsiOwner(context, kMsixVectors),
          VirtioNet(context.memory, msi, context.intx, *backend, mac),
          vm_(context.vm),
          loop_(context.loop),
          name_(fmt::format("{}.nic{}", context.vm_name, context.index)),
          use_ioeventfd_(config.ioeventfd) {
        for (unsigned q = 0; q < kQueueCount; ++q) {
            notifiers_[q] = kvm::EventFd::create();
            int fd = notifiers_[q].fd();
            loop_.watch(fd, vmm::EventLoop::Interest::Readable, [this, q] {
                notifiers_[q].drain();
                queue_notify(q);
            });
        }
        if (!config.crossover.empty()) {
            if (config.crossover_mode == vmm::CrossoverMode::Window) {
                window_ = make_window(name_, context);
                define_bar(kWindowBar, window_bar(*window_));
            }
            // Peers write the RX vector's irqfd directly while the guest
            // leaves it unmasked (see VirtioNet::kCrossoverRxVector).
            crossover_ = std::make_unique<CrossoverAttachment<virtio_net::VirtioNet>>(
                *this, config, mac, context, *backend, 1, msi.eventfd(kCrossoverRxVector), window_.get());
        }
        backend->start(context.loop, slow_path_receiver(crossover_.get(), *this), [this] { resume_tx(); });
    }
    ~VirtioNetNic() override {
        crossover_.reset();
        backend.reset();
        window_.reset();
        unregister_notifiers();
        for (auto& n : notifiers_) loop_.unwatch(n.fd(), vmm::EventLoop::Interest::Readable);
    }

    // A queue notify is a guest MMIO write that KVM turns into an eventfd
    // signal (no exit to userspace); follow the BAR wherever it is mapped.
    void bars_mapped() override {
        place_window(window_.get(), *this, kWindowBar, name_);
        if (crossover_) crossover_->window_moved();
        // ioeventfd=off: notifies stay MMIO exits, served by the vCPU thread.
        std::uint64_t base = use_ioeventfd_ && bar_decodes(notify_bar()) ? bar_address(notify_bar()) : 0;
        if (base == registered_base_) return;
        unregister_notifiers();
        if (base == 0) return;
        for (unsigned q = 0; q < kQueueCount; ++q) vm_.add_ioeventfd(notifiers_[q].fd(), base + notify_offset(q), 0, false);
        registered_base_ = base;
    }

private:
    static constexpr unsigned kMsixVectors = 3;
    // BAR2: the crossover DMA window (32-bit memory, 2 MiB), next to the
    // transport's 64-bit BAR4; virtio drivers look only where the
    // capabilities point.
    static constexpr unsigned kWindowBar = 2;
    static_assert(kWindowBar + 1 < VirtioNet::kBar || kWindowBar > VirtioNet::kBar + 1);

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
    std::string name_;
    bool use_ioeventfd_;
    std::unique_ptr<crossover::DmaWindow> window_;
    std::unique_ptr<CrossoverAttachment<virtio_net::VirtioNet>> crossover_;
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_nic(const vmm::NicConfig& config, vmm::NicContext& context) {
    net::MacAddress mac = config.mac ? *config.mac : net::MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, std::uint8_t(0x56 + context.index)}};
    switch (config.model) {
        case vmm::NicModel::E1000: return std::make_unique<E1000Nic>(config, mac, context);
        case vmm::NicModel::VirtioNet: return std::make_unique<VirtioNetNic>(config, mac, context);
    }
    throw Error("NIC model {} has no builder", int(config.model));
}

}  // namespace xover::cli
