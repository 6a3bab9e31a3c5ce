// PCI bus 0 behind a host bridge with configuration mechanism #1: the
// 0xCF8 address register and the 0xCFC..0xCFF data window. Device 00:00.0 is
// the host bridge itself (8086:1237); devices are added at the next free
// slot, their BARs assigned by the VMM (MMIO from 0xC0000000, I/O from
// 0xC000, each aligned to its size), and re-mapped on the PIO/MMIO buses
// whenever the guest moves a BAR or toggles COMMAND decoding.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "xover/vmm/io_bus.hpp"
#include "xover/vmm/io_device.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::vmm {

class PciBus final : public IoDevice {
public:
    static constexpr unsigned kSlots = 32;

    // `pio` and `mmio` are where BARs are mapped; the bus maps itself at
    // 0xCF8 on `pio` (8 ports) when attach() is called.
    PciBus(IoBus& pio, IoBus& mmio);
    ~PciBus() override;

    void attach_config_ports();

    // The slot the next add_device() will use; throws when the bus is full.
    unsigned next_slot() const;
    // Registers `device` at next_slot(), assigns and maps its BARs, sets
    // its interrupt line to `irq_line` (0xff: none). The device must
    // outlive the bus. Returns the slot.
    unsigned add_device(PciDevice& device, const std::string& name, std::uint8_t irq_line = 0xff);

    PciDevice* device(unsigned slot) const { return slot < kSlots ? slots_[slot].device : nullptr; }

    // Config mechanism #1 on ports 0xCF8..0xCFF (offsets 0..7).
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    std::uint32_t config_address() const { return address_; }

private:
    struct Mapping {
        bool mapped = false;
        std::uint64_t address = 0;
    };
    struct Slot {
        PciDevice* device = nullptr;
        std::string name;
        std::array<Mapping, PciDevice::kBarCount> bars{};
    };
    PciDevice* selected(std::uint32_t& reg) const;
    void assign_bars(PciDevice& device);
    void remap(unsigned slot);

    IoBus& pio_;
    IoBus& mmio_;
    std::unique_ptr<PciDevice> host_bridge_;
    std::array<Slot, kSlots> slots_{};
    std::mutex remap_mutex_;
    std::uint32_t address_ = 0;
    std::uint64_t next_mmio_;
    std::uint64_t next_io_;
};

}  // namespace xover::vmm
