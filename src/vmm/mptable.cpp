#include "xover/vmm/mptable.hpp"

#include <cstring>

#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::vmm {

namespace {

// Entry types and sizes (MP spec 1.4, chapter 4).
constexpr std::uint8_t kEntryProcessor = 0, kEntryBus = 1, kEntryIoapic = 2, kEntryIoInterrupt = 3,
                       kEntryLocalInterrupt = 4;
constexpr std::uint8_t kIntTypeInt = 0, kIntTypeNmi = 1, kIntTypeExtInt = 3;
constexpr std::uint8_t kBusPci = 0, kBusIsa = 1;
constexpr std::uint16_t kFlagsConforming = 0x0;
constexpr std::uint16_t kFlagsLevelActiveHigh = 0x1 | (0x3 << 2);  // polarity 01, trigger 11
constexpr std::size_t kFloatingPointerSize = 16;
constexpr std::size_t kHeaderSize = 44;

class Writer {
public:
    void u8(std::uint8_t v) { bytes.push_back(v); }
    void u16(std::uint16_t v) { u8(std::uint8_t(v)), u8(std::uint8_t(v >> 8)); }
    void u32(std::uint32_t v) { u16(std::uint16_t(v)), u16(std::uint16_t(v >> 16)); }
    void text(const char* s, std::size_t n) {  // space padded, no NUL
        std::size_t len = std::strlen(s);
        for (std::size_t i = 0; i < n; ++i) u8(i < len ? std::uint8_t(s[i]) : std::uint8_t(' '));
    }
    void put32(std::size_t at, std::uint32_t v) { std::memcpy(&bytes[at], &v, 4); }
    void put16(std::size_t at, std::uint16_t v) { std::memcpy(&bytes[at], &v, 2); }
    std::vector<std::uint8_t> bytes;
};

std::uint8_t checksum(const std::uint8_t* p, std::size_t n) {
    std::uint8_t sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum = std::uint8_t(sum + p[i]);
    return std::uint8_t(-sum);  // makes the bytes add up to zero
}

void io_interrupt(Writer& w, std::uint16_t flags, std::uint8_t bus, std::uint8_t irq, std::uint8_t ioapic,
                  std::uint8_t pin) {
    w.u8(kEntryIoInterrupt);
    w.u8(kIntTypeInt);
    w.u16(flags);
    w.u8(bus);
    w.u8(irq);
    w.u8(ioapic);
    w.u8(pin);
}

}  // namespace

std::vector<std::uint8_t> build_mptable(const MpTableConfig& config) {
    if (config.cpus == 0 || config.cpus > 254) throw Error("MP table: {} CPUs is out of range (1..254)", config.cpus);
    const auto table_address = std::uint32_t(config.address + kFloatingPointerSize);
    const auto ioapic_id = std::uint8_t(config.cpus);
    Writer w;

    // Floating pointer structure.
    w.text("_MP_", 4);
    w.u32(table_address);
    w.u8(1);  // length in 16-byte units
    w.u8(4);  // spec revision 1.4
    w.u8(0);  // checksum, below
    w.u8(0);  // feature 1: 0 = a configuration table is present
    w.u8(0), w.u8(0), w.u8(0), w.u8(0);
    w.bytes[10] = checksum(w.bytes.data(), kFloatingPointerSize);

    // Configuration table header; length, count, checksum patched below.
    const std::size_t header = w.bytes.size();
    w.text("PCMP", 4);
    w.u16(0);  // base table length
    w.u8(4);   // spec revision
    w.u8(0);   // checksum
    w.text("XOVER", 8);
    w.text("XOVER VM", 12);
    w.u32(0);  // OEM table pointer
    w.u16(0);  // OEM table size
    w.u16(0);  // entry count
    w.u32(std::uint32_t(layout::kLapicAddr));
    w.u16(0);  // extended table length
    w.u8(0);   // extended table checksum
    w.u8(0);
    std::uint16_t entries = 0;

    for (unsigned cpu = 0; cpu < config.cpus; ++cpu, ++entries) {
        w.u8(kEntryProcessor);
        w.u8(std::uint8_t(cpu));  // local APIC id
        w.u8(0x14);               // local APIC version
        w.u8(std::uint8_t(0x01 | (cpu == 0 ? 0x02 : 0)));  // enabled, bootstrap
        w.u32(config.cpu_signature);
        w.u32(config.cpu_features);
        w.u32(0), w.u32(0);
    }
    for (auto [id, name] : {std::pair{kBusPci, "PCI"}, std::pair{kBusIsa, "ISA"}}) {
        w.u8(kEntryBus);
        w.u8(id);
        w.text(name, 6);
        ++entries;
    }
    w.u8(kEntryIoapic);
    w.u8(ioapic_id);
    w.u8(0x11);  // IOAPIC version
    w.u8(0x01);  // enabled
    w.u32(std::uint32_t(layout::kIoapicAddr));
    ++entries;

    for (std::uint8_t irq = 0; irq < 16; ++irq) {
        if (irq == 2) continue;  // the PIC cascade, not a device line
        io_interrupt(w, kFlagsConforming, kBusIsa, irq, ioapic_id, irq);
        ++entries;
    }
    for (unsigned slot = 1; slot < 32; ++slot) {
        for (unsigned pin = 0; pin < 4; ++pin) {
            // PCI source bus IRQ: bits 6:2 = device, bits 1:0 = pin (0 = INTA#).
            io_interrupt(w, kFlagsLevelActiveHigh, kBusPci, std::uint8_t(slot << 2 | pin), ioapic_id,
                         std::uint8_t(layout::pci_intx_gsi(slot, pin)));
            ++entries;
        }
    }
    for (auto [type, lint] : {std::pair{kIntTypeExtInt, std::uint8_t(0)}, std::pair{kIntTypeNmi, std::uint8_t(1)}}) {
        w.u8(kEntryLocalInterrupt);
        w.u8(type);
        w.u16(kFlagsConforming);
        w.u8(kBusIsa);
        w.u8(0);
        w.u8(0xff);  // all local APICs
        w.u8(lint);
        ++entries;
    }

    std::size_t length = w.bytes.size() - header;
    w.put16(header + 4, std::uint16_t(length));
    w.put16(header + 34, entries);
    w.bytes[header + 7] = checksum(w.bytes.data() + header, length);
    (void)kHeaderSize;
    return std::move(w.bytes);
}

void write_mptable(GuestMemory& memory, const MpTableConfig& config) {
    auto bytes = build_mptable(config);
    if (bytes.size() > layout::kMpTableMax) throw Error("MP table of {} bytes does not fit", bytes.size());
    auto target = memory.span(config.address, bytes.size());
    if (target.empty()) throw Error("MP table at {:#x} is outside guest RAM", config.address);
    std::memcpy(target.data(), bytes.data(), bytes.size());
}

}  // namespace xover::vmm
