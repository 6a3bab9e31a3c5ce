#include "window_bar.hpp"

#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/vmm/ram_memory.hpp"

namespace xover::devices {

std::unique_ptr<crossover::DmaWindow> make_window(const std::string& name, vmm::NicContext& context) {
    auto* ram = dynamic_cast<vmm::RamMemory*>(&context.memory);
    if (!ram || !context.vm || !context.memory_slots) throw Error("{}: window mode needs a KVM VM's RAM", name);
    std::uint32_t first_slot = context.memory_slots->allocate(crossover::DmaWindow::kMemorySlots, name);
    return std::make_unique<crossover::DmaWindow>(name, crossover::kDefaultWindowSize, *context.vm, *ram, first_slot);
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

}  // namespace xover::devices
