// A PCI function as the host bridge and the guest see it: a 256-byte type-0
// configuration space with per-byte write masks, up to six BARs, and a
// capability list. Device models derive from it, define their BARs and
// capabilities in the constructor, and get generic BAR sizing for free.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "xover/vmm/io_device.hpp"

namespace xover::vmm {

struct PciBar {
    enum class Kind { Unused, Mmio32, Mmio64, Io };
    Kind kind = Kind::Unused;
    std::uint64_t size = 0;         // a power of two; at least 16 (I/O 4)
    IoDevice* handler = nullptr;    // receives accesses at offsets inside the BAR
};

struct PciIds {
    std::uint16_t vendor = 0;
    std::uint16_t device = 0;
    std::uint32_t class_code = 0;   // base class, subclass, prog-if (24 bits)
    std::uint8_t revision = 0;
    std::uint16_t subsystem_vendor = 0;
    std::uint16_t subsystem = 0;
};

class PciDevice {
public:
    static constexpr unsigned kBarCount = 6;
    static constexpr std::uint16_t kCommandIo = 1 << 0;
    static constexpr std::uint16_t kCommandMemory = 1 << 1;
    static constexpr std::uint16_t kCommandBusMaster = 1 << 2;
    static constexpr std::uint16_t kCommandIntxDisable = 1 << 10;

    explicit PciDevice(const PciIds& ids);
    virtual ~PciDevice() = default;
    PciDevice(const PciDevice&) = delete;
    PciDevice& operator=(const PciDevice&) = delete;

    // Configuration space accesses from the host bridge (offset < 256;
    // accesses past the end read as all-ones and are ignored).
    void config_read(std::uint32_t offset, std::span<std::uint8_t> data) const;
    void config_write(std::uint32_t offset, std::span<const std::uint8_t> data);

    const PciBar& bar(unsigned index) const { return bars_.at(index); }
    // The address the BAR is programmed at, or 0 when unassigned.
    std::uint64_t bar_address(unsigned index) const;
    // Whether the BAR currently decodes (command bit on, address assigned).
    bool bar_decodes(unsigned index) const;
    // Used by the VMM to pre-assign BARs before the guest starts.
    void set_bar_address(unsigned index, std::uint64_t address);

    std::uint16_t command() const;
    bool bus_master() const { return command() & kCommandBusMaster; }
    bool intx_disabled() const { return command() & kCommandIntxDisable; }
    void set_interrupt_line(std::uint8_t line);

    // Called by the bus after it (re)mapped this device's BARs: the place
    // for whoever wraps a device to move its ioeventfds along.
    virtual void bars_mapped() {}

    // key=value counters for --stats (device models override).
    virtual std::vector<std::pair<std::string, std::uint64_t>> counters() const { return {}; }

    // Called after any write that may change where BARs decode (BAR
    // registers, COMMAND); the machine re-maps the BARs on its buses.
    void set_mapping_listener(std::function<void()> listener) { mapping_listener_ = std::move(listener); }

protected:
    void define_bar(unsigned index, const PciBar& bar);
    void set_interrupt_pin(std::uint8_t pin);  // 1 = INTA#
    // Appends a capability; body excludes the 2-byte id/next header.
    // writable marks which body bytes the guest may change (same length or
    // empty for read-only). Returns the capability's config offset.
    std::uint8_t add_capability(std::uint8_t id, std::span<const std::uint8_t> body,
                                std::span<const std::uint8_t> writable = {});

    // Raw config space access for derived devices.
    std::uint8_t& config_byte(std::uint32_t offset) { return config_[offset]; }
    std::uint16_t config16(std::uint32_t offset) const;
    std::uint32_t config32(std::uint32_t offset) const;
    void set_config16(std::uint32_t offset, std::uint16_t v);
    void set_config32(std::uint32_t offset, std::uint32_t v);

    // Hook: runs after a guest config write was applied.
    virtual void config_written(std::uint32_t /*offset*/, std::uint32_t /*length*/) {}

private:
    std::array<std::uint8_t, 256> config_{};
    std::array<std::uint8_t, 256> writable_{};
    std::array<PciBar, kBarCount> bars_{};
    std::uint32_t next_capability_ = 0x40;
    std::uint8_t last_capability_ = 0;
    std::function<void()> mapping_listener_;
};

}  // namespace xover::vmm
