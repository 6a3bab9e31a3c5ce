#include "xover/vmm/pci_device.hpp"

#include <stdexcept>

namespace xover::vmm {

namespace {
constexpr std::uint32_t kCommand = 0x04;
constexpr std::uint32_t kStatus = 0x06;
constexpr std::uint32_t kBar0 = 0x10;
constexpr std::uint32_t kCapabilityPointer = 0x34;
constexpr std::uint32_t kInterruptLine = 0x3c;
constexpr std::uint32_t kInterruptPin = 0x3d;
constexpr std::uint16_t kStatusCapList = 1 << 4;
}  // namespace

PciDevice::PciDevice(const PciIds& ids) {
    set_config16(0x00, ids.vendor);
    set_config16(0x02, ids.device);
    config_[0x08] = ids.revision;
    config_[0x09] = std::uint8_t(ids.class_code);
    config_[0x0a] = std::uint8_t(ids.class_code >> 8);
    config_[0x0b] = std::uint8_t(ids.class_code >> 16);
    config_[0x0e] = 0x00;  // header type 0, single function
    set_config16(0x2c, ids.subsystem_vendor);
    set_config16(0x2e, ids.subsystem);
    // COMMAND: I/O, memory, bus master, INTx disable are guest-writable.
    writable_[kCommand] = kCommandIo | kCommandMemory | kCommandBusMaster;
    writable_[kCommand + 1] = kCommandIntxDisable >> 8;
    writable_[kInterruptLine] = 0xff;
}

std::uint16_t PciDevice::config16(std::uint32_t offset) const {
    return std::uint16_t(config_[offset] | config_[offset + 1] << 8);
}

std::uint32_t PciDevice::config32(std::uint32_t offset) const {
    return std::uint32_t(config16(offset)) | std::uint32_t(config16(offset + 2)) << 16;
}

void PciDevice::set_config16(std::uint32_t offset, std::uint16_t v) {
    config_[offset] = std::uint8_t(v);
    config_[offset + 1] = std::uint8_t(v >> 8);
}

void PciDevice::set_config32(std::uint32_t offset, std::uint32_t v) {
    set_config16(offset, std::uint16_t(v));
    set_config16(offset + 2, std::uint16_t(v >> 16));
}

void PciDevice::config_read(std::uint32_t offset, std::span<std::uint8_t> data) const {
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint32_t at = offset + std::uint32_t(i);
        data[i] = at < config_.size() ? config_[at] : 0xff;
    }
}

void PciDevice::config_write(std::uint32_t offset, std::span<const std::uint8_t> data) {
    bool mapping_changed = false;
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint32_t at = offset + std::uint32_t(i);
        if (at >= config_.size()) break;
        std::uint8_t mask = writable_[at];
        config_[at] = std::uint8_t((config_[at] & ~mask) | (data[i] & mask));
        if (at == kCommand || at == kCommand + 1 || (at >= kBar0 && at < kBar0 + 4 * kBarCount))
            mapping_changed = true;
    }
    config_written(offset, std::uint32_t(data.size()));
    if (mapping_changed && mapping_listener_) mapping_listener_();
}

void PciDevice::define_bar(unsigned index, const PciBar& bar) {
    if (index >= kBarCount || (bar.size & (bar.size - 1)) != 0 || bar.size == 0)
        throw std::invalid_argument("PCI BAR must have a power-of-two size");
    if (bar.kind == PciBar::Kind::Mmio64 && index + 1 >= kBarCount)
        throw std::invalid_argument("64-bit PCI BAR needs two slots");
    bars_[index] = bar;
    std::uint32_t reg = kBar0 + 4 * index;
    std::uint64_t address_mask = ~(bar.size - 1);
    std::uint32_t low_flags = 0;
    switch (bar.kind) {
    case PciBar::Kind::Io: low_flags = 0x1; address_mask &= ~std::uint64_t(0x3); break;
    case PciBar::Kind::Mmio32: low_flags = 0x0; address_mask &= ~std::uint64_t(0xf); break;
    case PciBar::Kind::Mmio64: low_flags = 0x4; address_mask &= ~std::uint64_t(0xf); break;
    case PciBar::Kind::Unused: return;
    }
    set_config32(reg, low_flags);
    for (int b = 0; b < 4; ++b) writable_[reg + b] = std::uint8_t(address_mask >> (8 * b));
    if (bar.kind == PciBar::Kind::Mmio64) {
        bars_[index + 1] = PciBar{};  // the upper half belongs to this BAR
        for (int b = 0; b < 4; ++b) writable_[reg + 4 + b] = std::uint8_t(address_mask >> (32 + 8 * b));
    }
}

std::uint64_t PciDevice::bar_address(unsigned index) const {
    const PciBar& bar = bars_.at(index);
    std::uint32_t reg = kBar0 + 4 * index;
    switch (bar.kind) {
    case PciBar::Kind::Io: return config32(reg) & ~0x3u;
    case PciBar::Kind::Mmio32: return config32(reg) & ~0xfu;
    case PciBar::Kind::Mmio64:
        return (std::uint64_t(config32(reg + 4)) << 32) | (config32(reg) & ~0xfu);
    case PciBar::Kind::Unused: return 0;
    }
    return 0;
}

bool PciDevice::bar_decodes(unsigned index) const {
    const PciBar& bar = bars_.at(index);
    if (bar.kind == PciBar::Kind::Unused) return false;
    std::uint16_t needed = bar.kind == PciBar::Kind::Io ? kCommandIo : kCommandMemory;
    std::uint64_t address = bar_address(index);
    // An all-ones pattern is the guest sizing the BAR, not a placement.
    std::uint64_t sizing = bar.kind == PciBar::Kind::Mmio64 ? ~(bar.size - 1)
                                                             : (0xffffffffull & ~(bar.size - 1));
    if (bar.kind == PciBar::Kind::Io) sizing &= ~0x3ull; else sizing &= ~0xfull;
    return (command() & needed) && address != 0 && address != sizing;
}

void PciDevice::set_bar_address(unsigned index, std::uint64_t address) {
    const PciBar& bar = bars_.at(index);
    std::uint32_t reg = kBar0 + 4 * index;
    std::uint32_t flags = config32(reg) & (bar.kind == PciBar::Kind::Io ? 0x3u : 0xfu);
    set_config32(reg, std::uint32_t(address) | flags);
    if (bar.kind == PciBar::Kind::Mmio64) set_config32(reg + 4, std::uint32_t(address >> 32));
    if (mapping_listener_) mapping_listener_();
}

std::uint16_t PciDevice::command() const { return config16(kCommand); }

void PciDevice::set_interrupt_line(std::uint8_t line) { config_[kInterruptLine] = line; }

void PciDevice::set_interrupt_pin(std::uint8_t pin) { config_[kInterruptPin] = pin; }

std::uint8_t PciDevice::add_capability(std::uint8_t id, std::span<const std::uint8_t> body,
                                       std::span<const std::uint8_t> writable) {
    std::uint32_t size = 2 + std::uint32_t(body.size());
    std::uint32_t at = next_capability_;
    if (at + size > config_.size()) throw std::length_error("PCI capabilities overflow config space");
    config_[at] = id;
    config_[at + 1] = 0;
    for (std::size_t i = 0; i < body.size(); ++i) {
        config_[at + 2 + i] = body[i];
        writable_[at + 2 + i] = i < writable.size() ? writable[i] : 0;
    }
    if (last_capability_ == 0) {
        config_[kCapabilityPointer] = std::uint8_t(at);
        set_config16(kStatus, config16(kStatus) | kStatusCapList);
    } else {
        config_[last_capability_ + 1] = std::uint8_t(at);
    }
    last_capability_ = std::uint8_t(at);
    next_capability_ = (at + size + 3) & ~3u;
    return std::uint8_t(at);
}

}  // namespace xover::vmm
