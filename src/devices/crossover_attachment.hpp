// Private to src/devices: the crossover side of one NIC (only for NICs
// with a crossover configuration). Owns the port, watches its doorbell (a
// peer returned RX buffers we were waiting for: resume transmit; or placed
// frames whose RX interrupt only we may deliver), queues the NIC's
// registration with the VM's broker agent (the device manager registers
// the VM once every NIC is built), and applies links to the model under
// its lock. `Model` is e1000::E1000 or virtio_net::VirtioNet.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "nic_setup.hpp"
#include "xover/crossover/crossover_port.hpp"
#include "xover/crossover/dma_window.hpp"
#include "xover/crossover/ring_area.hpp"
#include "xover/crossover/vm_agent.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/net/backend.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/nic_context.hpp"

namespace xover::devices {

template <class Model>
class CrossoverAttachment final : public crossover::LinkedNic, public net::FrameReceiver {
public:
    // `irq_fd`: the eventfd peers write to interrupt this NIC's guest;
    // `tx_irq_fd` its TX queue's (-1: the NIC has one interrupt).
    // `window`: the NIC's DMA window in window mode (else null; then a
    // mode=window configuration falls back to copy mode).
    CrossoverAttachment(Model& model, const NicSetup& setup, vmm::NicContext& context, net::Backend& backend,
                        int irq_fd, int tx_irq_fd, crossover::DmaWindow* window = nullptr,
                        crossover::RingArea* rings = nullptr);
    ~CrossoverAttachment() override;

    // The backend delivers through here (see slow_path_receiver()): each
    // frame it placed is counted, so that a peer switching from the slow
    // path to a link knows when nothing it sent is still on the way.
    bool deliver(std::span<const std::uint8_t> frame) override;
    void link_state_changed() override { model_.link_state_changed(); }

    // The guest moved our window BAR: it sizes every BAR while it walks the
    // bus, which may be after our window link came up (a peer started at
    // the same moment). What peers read as our RX half follows it, and
    // producers that waited for it look again.
    void window_moved();

    void crossover_link_up(std::shared_ptr<crossover::PeerLink> link) override;
    void crossover_link_down(std::uint64_t link_id) override;

private:
    void make_retry_timer();
    void with_vcpus_paused(const std::function<void()>& fn);
    void unmap_window();
    void settle_window_tx();
    void settle_window_tx_paused();

    Model& model_;
    vmm::EventLoop& loop_;
    crossover::VmAgent& agent_;
    unsigned index_;
    std::unique_ptr<crossover::CrossoverPort> port_;
    crossover::DmaWindow* window_;
    crossover::RingArea* rings_;  // with the window
    std::function<void(const std::function<void()>&)> pause_;
    bool registered_ = false;
    kvm::UniqueFd retry_timer_;
    std::atomic<std::uint64_t> retry_due_ns_{0};
};

}  // namespace xover::devices
