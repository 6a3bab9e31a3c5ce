#include "xover/vmm/pci_bus.hpp"

#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::vmm {

namespace {
constexpr std::uint32_t kEnableBit = 0x80000000u;
constexpr PciIds kHostBridgeIds{0x8086, 0x1237, 0x060000, 0x02, 0, 0};  // i440FX host bridge

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}
}  // namespace

PciBus::PciBus(IoBus& pio, IoBus& mmio)
    : pio_(pio), mmio_(mmio), next_mmio_(layout::kPciMmioStart), next_io_(layout::kPciIoStart) {
    host_bridge_ = std::make_unique<PciDevice>(kHostBridgeIds);
    slots_[0].device = host_bridge_.get();
    slots_[0].name = "pci-host";
}

PciBus::~PciBus() {
    for (auto& slot : slots_)
        if (slot.device) slot.device->set_mapping_listener({});
}

void PciBus::attach_config_ports() { pio_.insert(layout::kPciConfigAddressPort, 8, *this, "pci-config"); }

unsigned PciBus::next_slot() const {
    for (unsigned s = 1; s < kSlots; ++s)
        if (!slots_[s].device) return s;
    throw Error("PCI bus 0 is full ({} slots)", kSlots);
}

unsigned PciBus::add_device(PciDevice& device, const std::string& name, std::uint8_t irq_line) {
    unsigned slot = next_slot();
    slots_[slot].device = &device;
    slots_[slot].name = name;
    device.set_interrupt_line(irq_line);
    assign_bars(device);
    // Decode enabled, as firmware leaves it: guests that do not re-probe
    // (the tiny kernels) can use the BARs directly.
    std::uint16_t command = device.command();
    for (unsigned i = 0; i < PciDevice::kBarCount; ++i) {
        if (device.bar(i).kind == PciBar::Kind::Io) command |= PciDevice::kCommandIo;
        if (device.bar(i).kind == PciBar::Kind::Mmio32 || device.bar(i).kind == PciBar::Kind::Mmio64)
            command |= PciDevice::kCommandMemory;
    }
    const std::uint8_t bytes[2] = {std::uint8_t(command), std::uint8_t(command >> 8)};
    device.config_write(0x04, bytes);
    device.set_mapping_listener([this, slot] { remap(slot); });
    remap(slot);
    return slot;
}

void PciBus::assign_bars(PciDevice& device) {
    for (unsigned i = 0; i < PciDevice::kBarCount; ++i) {
        const PciBar& bar = device.bar(i);
        switch (bar.kind) {
        case PciBar::Kind::Unused: break;
        case PciBar::Kind::Io: {
            std::uint64_t at = align_up(next_io_, bar.size);
            if (at + bar.size > layout::kPciIoEnd) throw Error("PCI I/O window exhausted (BAR of {} bytes)", bar.size);
            device.set_bar_address(i, at);
            next_io_ = at + bar.size;
            break;
        }
        case PciBar::Kind::Mmio32:
        case PciBar::Kind::Mmio64: {
            // 64-bit BARs also go below 4 GiB: simplest for 32-bit guests.
            std::uint64_t at = align_up(next_mmio_, bar.size);
            if (at + bar.size > layout::kPciMmioEnd)
                throw Error("PCI MMIO window exhausted (BAR of {} bytes)", bar.size);
            device.set_bar_address(i, at);
            next_mmio_ = at + bar.size;
            break;
        }
        }
    }
}

void PciBus::remap(unsigned slot_index) {
    std::lock_guard lock(remap_mutex_);
    Slot& slot = slots_[slot_index];
    PciDevice& device = *slot.device;
    for (unsigned i = 0; i < PciDevice::kBarCount; ++i) {
        const PciBar& bar = device.bar(i);
        if (bar.kind == PciBar::Kind::Unused || !bar.handler) continue;
        IoBus& bus = bar.kind == PciBar::Kind::Io ? pio_ : mmio_;
        Mapping& current = slot.bars[i];
        bool decodes = device.bar_decodes(i);
        std::uint64_t address = device.bar_address(i);
        if (current.mapped && decodes && current.address == address) continue;
        if (current.mapped) {
            bus.remove(current.address);
            current.mapped = false;
        }
        if (!decodes) continue;
        if (bus.try_insert(address, bar.size, *bar.handler, slot.name)) {
            current = Mapping{true, address};
        } else {
            spdlog::warn("PCI 00:{:02x}.0 ({}): BAR{} at {:#x} overlaps another device; left unmapped", slot_index,
                         slot.name, i, address);
        }
    }
    device.bars_mapped();
}

PciDevice* PciBus::selected(std::uint32_t& reg) const {
    if (!(address_ & kEnableBit)) return nullptr;
    unsigned bus = (address_ >> 16) & 0xff;
    unsigned dev = (address_ >> 11) & 0x1f;
    unsigned function = (address_ >> 8) & 0x7;
    reg = address_ & 0xfc;
    if (bus != 0 || function != 0) return nullptr;
    return slots_[dev].device;
}

void PciBus::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    if (offset < 4) {
        // The address register is only decoded as a whole dword.
        if (offset == 0 && data.size() == 4) {
            store_le(data, address_);
        } else {
            std::fill(data.begin(), data.end(), std::uint8_t(0xff));
        }
        return;
    }
    std::uint32_t reg = 0;
    PciDevice* device = selected(reg);
    if (!device) {
        std::fill(data.begin(), data.end(), std::uint8_t(0xff));
        return;
    }
    device->config_read(reg + std::uint32_t(offset - 4), data);
}

void PciBus::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset < 4) {
        // Byte writes to 0xCF8..0xCFB are not config addresses (Linux's
        // mechanism probe writes 0xCFB); ignore them.
        if (offset == 0 && data.size() == 4) address_ = std::uint32_t(load_le(data)) & 0x80fffffcu;
        return;
    }
    std::uint32_t reg = 0;
    PciDevice* device = selected(reg);
    if (!device) return;
    device->config_write(reg + std::uint32_t(offset - 4), data);
}

}  // namespace xover::vmm
