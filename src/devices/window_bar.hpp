// Private to src/devices: a crossover NIC's DMA window (window mode) and
// its ring area as BARs of its device. The model advertises each as a
// memory BAR that is RAM for the guest: the BAR has no handler, and the
// memory slots follow it wherever the guest places it. The ring area is
// the BAR right after the window's.
#pragma once

#include <memory>
#include <string>

#include "xover/crossover/dma_window.hpp"
#include "xover/crossover/ring_area.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::devices {

// The window, on memory slots from the machine's allocator.
std::unique_ptr<crossover::DmaWindow> make_window(const std::string& name, vmm::NicContext& context);

vmm::PciBar window_bar(const crossover::DmaWindow& window);

// The ring area, on a memory slot from the machine's allocator.
std::unique_ptr<crossover::RingArea> make_ring_area(const std::string& name, vmm::NicContext& context);

vmm::PciBar ring_area_bar(const crossover::RingArea& rings);

// After the guest moved BARs: the window's slots follow BAR `bar` of
// `device` (none while it does not decode). Logs, never throws. `window`
// may be null (no window mode).
void place_window(crossover::DmaWindow* window, const vmm::PciDevice& device, unsigned bar, const std::string& name);
// The same for the ring area.
void place_ring_area(crossover::RingArea* rings, const vmm::PciDevice& device, unsigned bar, const std::string& name);

}  // namespace xover::devices
