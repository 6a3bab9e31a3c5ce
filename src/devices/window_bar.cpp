#include "window_bar.hpp"

#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::devices {

namespace {
vmm::RamMemory& kvm_ram(const std::string& name, vmm::NicContext& context) {
    auto* ram = dynamic_cast<vmm::RamMemory*>(&context.memory);
    if (!ram || !context.vm || !context.memory_slots) throw Error("{}: window mode needs a KVM VM's RAM", name);
    return *ram;
}

template <class Area>
void place_at_bar(Area* area, const vmm::PciDevice& device, unsigned bar, const std::string& name, const char* what) {
    if (!area) return;
    try {
        area->place(device.bar_decodes(bar) ? device.bar_address(bar) : 0);
    } catch (const std::exception& e) {
        spdlog::error("{}: placing the {}: {}", name, what, e.what());
    }
}
}  // namespace

std::unique_ptr<crossover::DmaWindow> make_window(const std::string& name, vmm::NicContext& context) {
    vmm::RamMemory& ram = kvm_ram(name, context);
    std::uint32_t first_slot = context.memory_slots->allocate(crossover::DmaWindow::kMemorySlots, name);
    return std::make_unique<crossover::DmaWindow>(name, crossover::kDefaultWindowSize, *context.vm, ram, first_slot);
}

std::unique_ptr<crossover::RingArea> make_ring_area(const std::string& name, vmm::NicContext& context) {
    vmm::RamMemory& ram = kvm_ram(name, context);
    std::uint32_t slot = context.memory_slots->allocate(crossover::RingArea::kMemorySlots, name + " rings");
    return std::make_unique<crossover::RingArea>(name, *context.vm, ram, slot);
}

vmm::PciBar ring_area_bar(const crossover::RingArea& rings) {
    return {vmm::PciBar::Kind::Mmio32, rings.size(), nullptr};
}

vmm::PciBar window_bar(const crossover::DmaWindow& window) {
    return {vmm::PciBar::Kind::Mmio32, window.size(), nullptr};
}

void place_window(crossover::DmaWindow* window, const vmm::PciDevice& device, unsigned bar, const std::string& name) {
    place_at_bar(window, device, bar, name, "DMA window");
}

void place_ring_area(crossover::RingArea* rings, const vmm::PciDevice& device, unsigned bar, const std::string& name) {
    place_at_bar(rings, device, bar, name, "ring area");
}

}  // namespace xover::devices
