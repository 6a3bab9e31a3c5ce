// Private to src/devices: the crossover parts of a NIC with a crossover
// configuration, as either NIC builder assembles them: in window mode its
// DMA window, defined as a BAR of the model, and its crossover attachment.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include "crossover_attachment.hpp"
#include "nic_setup.hpp"
#include "xover/crossover/dma_window.hpp"
#include "xover/net/backend.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::devices {

template <class Model>
class NicCrossover {
public:
    // The model's own (protected) PciDevice::define_bar.
    using DefineBar = std::function<void(unsigned index, const vmm::PciBar& bar)>;

    // Peers interrupt the NIC's guest through `irq_fd` (and its TX queue
    // through `tx_irq_fd`, -1: none). In window mode the window becomes
    // BAR `window_bar` of the model (through `define_bar`), and its ring
    // area the BAR after it.
    NicCrossover(Model& model, const NicSetup& setup, vmm::NicContext& context, net::Backend& backend, int irq_fd,
                 int tx_irq_fd, unsigned window_bar, const DefineBar& define_bar);

    // Where the NIC's backend delivers (arrivals are counted for peers).
    net::FrameReceiver& receiver() { return *attachment_; }

    // The guest moved the model's BARs: the window's memory slots follow
    // its BAR, and what peers read as our RX half follows the window.
    void bars_mapped(const vmm::PciDevice& model);

private:
    std::string name_;
    unsigned window_bar_;
    std::unique_ptr<crossover::DmaWindow> window_;  // outlives the attachment, which points to it
    std::unique_ptr<crossover::RingArea> rings_;     // window mode, BAR window_bar_ + 1; the same
    std::unique_ptr<CrossoverAttachment<Model>> attachment_;
};

// Starts the NIC's backend: it delivers through the crossover attachment
// when the NIC has one (arrivals are counted for peers), else straight to
// the model, and resumes the model's transmit when it has room again.
template <class Model>
void start_backend(net::Backend& backend, vmm::EventLoop& loop, std::type_identity_t<Model>& model,
                   NicCrossover<Model>* crossover) {
    net::FrameReceiver& receiver = crossover ? crossover->receiver() : model;
    backend.start(loop, receiver, [&model] { model.resume_tx(); });
}

}  // namespace xover::devices
