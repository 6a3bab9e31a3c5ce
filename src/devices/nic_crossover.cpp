#include "nic_crossover.hpp"

#include "window_bar.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/virtio_net/virtio_net.hpp"

namespace xover::devices {

template <class Model>
NicCrossover<Model>::NicCrossover(Model& model, const NicSetup& setup, vmm::NicContext& context,
                                  net::Backend& backend, int irq_fd, int tx_irq_fd, unsigned window_bar,
                                  const DefineBar& define_bar)
    : name_(setup.name), window_bar_(window_bar) {
    if (setup.config.crossover_mode == vmm::CrossoverMode::Window) {
        window_ = make_window(name_, context);
        define_bar(window_bar_, devices::window_bar(*window_));
        rings_ = make_ring_area(name_, context);
        define_bar(window_bar_ + 1, ring_area_bar(*rings_));
    }
    attachment_ = std::make_unique<CrossoverAttachment<Model>>(model, setup, context, backend, irq_fd, tx_irq_fd,
                                                               window_.get(), rings_.get());
}

template <class Model>
void NicCrossover<Model>::bars_mapped(const vmm::PciDevice& model) {
    place_window(window_.get(), model, window_bar_, name_);
    place_ring_area(rings_.get(), model, window_bar_ + 1, name_);
    attachment_->window_moved();
}

template class NicCrossover<e1000::E1000>;
template class NicCrossover<virtio_net::VirtioNet>;

}  // namespace xover::devices
