#include "crossover_attachment.hpp"

#include <unistd.h>

#include <variant>

#include <spdlog/spdlog.h>

#include "deadline_timer.hpp"
#include "xover/crossover/client.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/error.hpp"
#include "xover/nic/shared_nic_state.hpp"
#include "xover/virtio_net/virtio_net.hpp"

namespace xover::devices {

namespace {

// The model the port's views and state page serve (the page's model field:
// which model part of it is live).
nic::ModelId port_model(vmm::NicModel model) {
    switch (model) {
        case vmm::NicModel::E1000: return nic::ModelId::E1000;
        case vmm::NicModel::VirtioNet: return nic::ModelId::VirtioNet;
    }
    throw Error("NIC model {} has no state page id", int(model));
}

crossover::LinkMode link_mode(vmm::CrossoverMode mode) {
    return mode == vmm::CrossoverMode::Window ? crossover::LinkMode::Window : crossover::LinkMode::Copy;
}

}  // namespace

template <class Model>
CrossoverAttachment<Model>::CrossoverAttachment(Model& model, const NicSetup& setup, vmm::NicContext& context,
                                                net::Backend& backend, int irq_fd, int tx_irq_fd,
                                                crossover::DmaWindow* window, crossover::RingArea* rings)
    : model_(model), loop_(context.loop), agent_(setup.agent), index_(context.index), window_(window), rings_(rings),
      pause_(context.with_vcpus_paused) {
    const vmm::NicConfig& config = setup.config;
    std::optional<vmm::RamFile> ram = context.memory.ram_file();
    if (!ram) throw Error("--nic {}: crossover needs the VM's RAM memfd", vmm::to_string(config.model));
    const std::string& name = setup.name;
    port_ = std::make_unique<crossover::CrossoverPort>(name, port_model(config.model), backend,
                                                        std::holds_alternative<net::NoneSpec>(config.backend));
    int doorbell = port_->doorbell().fd();
    loop_.watch(doorbell, vmm::EventLoop::Interest::Readable, [this] {
        port_->doorbell().drain();
        // Peers also ring it for RX interrupts only this process can
        // raise: virtio-net INTx or a vector they hold no fd for;
        // e1000 RXT0 under RDTR/RADV delay or ITR throttling.
        port_->note_doorbell_wakeup();
        settle_window_tx();
        model_.doorbell_rang();
    });
    port_->set_own_memory(context.memory);
    bool is_auto = config.crossover.size() == 1 && config.crossover[0] == "auto";
    if (is_auto) {
        unsigned index = index_;
        crossover::VmAgent& agent = agent_;
        port_->set_frame_seen_reporter(
            [&agent, index](const net::MacAddress& dst) { agent.report_frame_seen(index, dst); });
    }
    port_->set_window(window_);
    port_->set_own_mac(setup.mac);
    make_retry_timer();
    model_.attach_crossover(*port_);

    crossover::NicRegistration reg;
    reg.index = index_;
    reg.mac = setup.mac;
    reg.model = vmm::to_string(config.model);
    if (!is_auto) reg.peers = config.crossover;
    reg.auto_peer = is_auto;
    reg.mode = link_mode(config.crossover_mode);
    if (reg.mode == crossover::LinkMode::Window && (!window_ || !rings_)) {
        spdlog::warn("{}: {} has no DMA window; crossover window mode falls back to copy mode", name,
                     vmm::to_string(config.model));
        reg.mode = crossover::LinkMode::Copy;
    }
    if (reg.mode == crossover::LinkMode::Window) {
        reg.window = crossover::dup_for_broker(window_->tx_element_fd());
        reg.window_size = window_->half_size();
        reg.rings = crossover::dup_for_broker(rings_->fd());
        reg.rings_size = rings_->size();
    }
    reg.ram_size = ram->size;
    reg.ram = crossover::dup_for_broker(ram->fd);
    reg.state = port_->page().dup_fd();
    reg.irq = crossover::dup_for_broker(irq_fd);
    reg.doorbell = crossover::dup_for_broker(doorbell);
    if (tx_irq_fd >= 0) reg.tx_irq = crossover::dup_for_broker(tx_irq_fd);
    agent_.add_nic(std::move(reg), *this);
    registered_ = true;
}

template <class Model>
CrossoverAttachment<Model>::~CrossoverAttachment() {
    if (retry_timer_) loop_.unwatch(retry_timer_.get(), vmm::EventLoop::Interest::Readable);
    if (registered_) agent_.remove_nic(index_);
    if (port_) loop_.unwatch(port_->doorbell().fd(), vmm::EventLoop::Interest::Readable);
}

template <class Model>
bool CrossoverAttachment<Model>::deliver(std::span<const std::uint8_t> frame) {
    const bool placed = model_.deliver(frame);
    port_->note_slow_delivery(frame, placed);
    return placed;
}

template <class Model>
void CrossoverAttachment<Model>::window_moved() {
    if (!window_) return;
    if (rings_) port_->shared().ring_area_gpa.store(rings_->gpa(), std::memory_order_release);
    model_.run_locked([&] {
        if (port_->window_link() == 0) return;
        port_->shared().window_rx_gpa.store(window_->half_gpa(crossover::DmaWindow::Half::Rx),
                                            std::memory_order_seq_cst);
        port_->rx_space_returned();
    });
}

template <class Model>
void CrossoverAttachment<Model>::crossover_link_up(std::shared_ptr<crossover::PeerLink> link) {
    bool window = link->mode == crossover::LinkMode::Window && window_ && link->peer_window_fd &&
                  port_->window_link() == 0;
    if (!window) {
        model_.run_locked([&] { port_->add_link(std::move(link)); });
        model_.link_changed();
        return;
    }
    // The remapper, with every vCPU parked and the device quiet. Our RX
    // half moves onto the peer's element with its contents (frames our
    // guest has not read yet stay; the peer's TX half is not on the
    // element before it has seen this mapping). Our TX half follows onto
    // our element only once both rings are known fresh (settle_window_tx).
    std::uint64_t id = link->id;
    int element = link->peer_window_fd.get();
    with_vcpus_paused([&] {
        model_.run_locked([&] {
            if (!port_->add_link(std::move(link))) return;
            try {
                window_->attach(crossover::DmaWindow::Half::Rx, element, true);
            } catch (const std::exception& e) {
                spdlog::error("{}: window link {}: {}; staying in copy mode", port_->name(), id, e.what());
                unmap_window();
                return;
            }
            nic::SharedNicState& own = port_->shared();
            own.window_rx_fresh.store(port_->rx_fresh() ? 1 : 0, std::memory_order_relaxed);
            own.window_rx_gpa.store(window_->half_gpa(crossover::DmaWindow::Half::Rx), std::memory_order_release);
            own.window_rx_link.store(id, std::memory_order_seq_cst);
            port_->set_window_link(id);  // our TX half is pending until settled
            // A peer may have found our RX buffers in the window out of
            // its reach until now (see awaiting_peer_window): wake it.
            port_->rx_space_returned();
            spdlog::info("{}: window link {}: RX half remapped ({}; {} remaps so far)", port_->name(), id,
                         own.window_rx_fresh.load(std::memory_order_relaxed) ? "fresh" : "frames already placed",
                         window_->remaps());
            settle_window_tx_paused();  // the peer may have mapped our element already
        });
    });
    model_.link_changed();
}

// The deferred half of a window link-up: once the peer has mapped our
// element, our TX half goes onto it (zero copy) if both rings are fresh,
// or stays private for the link's life (frames are copied into the
// peer's RX buffers through the window's own view of the element). The
// senders' frames to the peer wait meanwhile; they bring us here through
// the retry timer, and the peer's mapping through our doorbell.
template <class Model>
void CrossoverAttachment<Model>::settle_window_tx() {
    if (!port_->window_tx_pending()) return;
    bool decidable = false;
    model_.run_locked([&] { decidable = port_->window_tx_pending() && port_->window_tx_may_share().has_value(); });
    if (!decidable) return;
    with_vcpus_paused([&] { model_.run_locked([&] { settle_window_tx_paused(); }); });
    if (!port_->window_tx_pending()) model_.resume_tx();
}

// Device lock held, vCPUs paused.
template <class Model>
void CrossoverAttachment<Model>::settle_window_tx_paused() {
    if (!port_->window_tx_pending()) return;
    std::optional<bool> share = port_->window_tx_may_share();
    if (!share) return;
    if (port_->window_tx_leaving()) {
        port_->take_tx_half_off(crossover::CrossoverPort::Remap::Paused);
        return;
    }
    if (*share) {
        try {
            window_->attach(crossover::DmaWindow::Half::Tx, window_->tx_element_fd(), true);
        } catch (const std::exception& e) {
            spdlog::error("{}: window link {}: TX half: {}; frames are copied", port_->name(), port_->window_link(),
                          e.what());
            *share = false;
        }
    }
    port_->window_tx_settled(*share);
    if (*share)
        spdlog::info("{}: window link {}: TX half remapped, frames go in place", port_->name(), port_->window_link());
    else
        spdlog::info("{}: window link {}: the rings did not start together; TX half stays private, frames are copied",
                     port_->name(), port_->window_link());
}

template <class Model>
void CrossoverAttachment<Model>::crossover_link_down(std::uint64_t link_id) {
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

// send() answered Busy while waiting for something no doorbell announces
// (a drain, a group frame's patience): resume_tx() after `delay`. Called
// under the device lock; one timerfd, never pushed later.
template <class Model>
void CrossoverAttachment<Model>::make_retry_timer() {
    retry_timer_ = make_deadline_timer("the crossover retry timer");
    int fd = retry_timer_.get();
    loop_.watch(fd, vmm::EventLoop::Interest::Readable, [this, fd] {
        std::uint64_t expirations;
        if (::read(fd, &expirations, sizeof expirations) <= 0) return;
        retry_due_ns_.store(0, std::memory_order_relaxed);
        settle_window_tx();
        model_.resume_tx();
        model_.retry_rx();
    });
    port_->set_retry_scheduler([this, fd](std::chrono::milliseconds delay) {
        std::uint64_t due = monotonic_ns() + std::uint64_t(delay.count()) * 1'000'000ull;
        std::uint64_t armed = retry_due_ns_.load(std::memory_order_relaxed);
        if (armed != 0 && armed <= due) return;
        retry_due_ns_.store(due, std::memory_order_relaxed);
        arm_deadline(fd, due);
    });
}

template <class Model>
void CrossoverAttachment<Model>::with_vcpus_paused(const std::function<void()>& fn) {
    if (pause_)
        pause_(fn);
    else
        fn();
}

// Both halves back on private memory (contents copied back).
template <class Model>
void CrossoverAttachment<Model>::unmap_window() {
    for (auto half : {crossover::DmaWindow::Half::Tx, crossover::DmaWindow::Half::Rx}) {
        try {
            window_->detach(half);
        } catch (const std::exception& e) {
            spdlog::error("{}: restoring the DMA window: {}", port_->name(), e.what());
        }
    }
}

template class CrossoverAttachment<e1000::E1000>;
template class CrossoverAttachment<virtio_net::VirtioNet>;

}  // namespace xover::devices
