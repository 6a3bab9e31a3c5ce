// Configuration mechanism #1, BAR assignment and sizing, and re-mapping of
// BARs on the buses when the guest moves them or toggles COMMAND.
#include <catch2/catch.hpp>

#include "xover/vmm/io_bus.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/vmm/pci_bus.hpp"

namespace {

using xover::vmm::IoBus;
using xover::vmm::PciBar;
using xover::vmm::PciBus;
using xover::vmm::PciDevice;

struct Regs : xover::vmm::IoDevice {
    std::uint64_t last_read = ~0ull;
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        last_read = offset;
        for (auto& b : data) b = 0x11;
    }
    void write(std::uint64_t, std::span<const std::uint8_t>) override {}
};

struct TestNic : PciDevice {
    Regs mmio, io;
    TestNic() : PciDevice({0x8086, 0x100e, 0x020000, 0, 0, 0}) {
        define_bar(0, PciBar{PciBar::Kind::Mmio32, 0x20000, &mmio});
        define_bar(1, PciBar{PciBar::Kind::Io, 0x40, &io});
        set_interrupt_pin(1);
    }
};

struct Fixture {
    IoBus pio{"pio"}, mmio{"mmio"};
    PciBus pci{pio, mmio};
    Fixture() { pci.attach_config_ports(); }

    void select(unsigned dev, unsigned reg) {
        std::uint32_t address = 0x80000000u | dev << 11 | reg;
        std::uint8_t bytes[4];
        xover::vmm::store_le(bytes, address);
        pio.write(0xcf8, bytes);
    }
    std::uint32_t cfg_read(unsigned dev, unsigned reg, unsigned width = 4) {
        select(dev, reg & ~3u);
        std::uint8_t bytes[4] = {};
        pio.read(0xcfc + (reg & 3), std::span<std::uint8_t>(bytes, width));
        return std::uint32_t(xover::vmm::load_le(std::span<const std::uint8_t>(bytes, width)));
    }
    void cfg_write(unsigned dev, unsigned reg, std::uint32_t value, unsigned width = 4) {
        select(dev, reg & ~3u);
        std::uint8_t bytes[4];
        xover::vmm::store_le(bytes, value);
        pio.write(0xcfc + (reg & 3), std::span<const std::uint8_t>(bytes, width));
    }
};

}  // namespace

TEST_CASE("pci: host bridge at 00:00.0, empty slots read all-ones", "[pci]") {
    Fixture f;
    CHECK(f.cfg_read(0, 0) == 0x12378086);
    CHECK(f.cfg_read(0, 0x08) >> 8 == 0x060000);
    CHECK(f.cfg_read(5, 0) == 0xffffffff);
    // Byte and word accesses inside the data window.
    CHECK(f.cfg_read(0, 0x02, 2) == 0x1237);
    CHECK(f.cfg_read(0, 0x01, 1) == 0x80);
    CHECK(f.cfg_read(0, 0x03, 1) == 0x12);
}

TEST_CASE("pci: address register reads back, disabled means no device", "[pci]") {
    Fixture f;
    f.select(0, 0x10);
    std::uint8_t bytes[4];
    f.pio.read(0xcf8, bytes);
    CHECK(xover::vmm::load_le(bytes) == 0x80000010);
    // A byte write to 0xCFB (Linux's mechanism probe) does not change it.
    std::uint8_t one = 1;
    f.pio.write(0xcfb, std::span<const std::uint8_t>(&one, 1));
    f.pio.read(0xcf8, bytes);
    CHECK(xover::vmm::load_le(bytes) == 0x80000010);
    std::uint8_t zero[4] = {};
    f.pio.write(0xcf8, zero);
    f.pio.read(0xcfc, bytes);
    CHECK(xover::vmm::load_le(bytes) == 0xffffffff);
}

TEST_CASE("pci: devices get the next slot, pre-assigned BARs, decoding on", "[pci]") {
    TestNic nic;  // declared first: it outlives the bus pointing to it
    Fixture f;
    CHECK(f.pci.next_slot() == 1);
    unsigned slot = f.pci.add_device(nic, "nic", 17);
    CHECK(slot == 1);
    CHECK(f.pci.next_slot() == 2);
    CHECK(f.cfg_read(1, 0) == 0x100e8086);
    CHECK(f.cfg_read(1, 0x10) == xover::vmm::layout::kPciMmioStart);
    CHECK(f.cfg_read(1, 0x14) == (xover::vmm::layout::kPciIoStart | 1));
    CHECK((f.cfg_read(1, 0x04, 2) & 0x3) == 0x3);
    CHECK(f.cfg_read(1, 0x3c, 1) == 17);
    CHECK(f.cfg_read(1, 0x3d, 1) == 1);
    std::uint8_t data[4];
    CHECK(f.mmio.read(xover::vmm::layout::kPciMmioStart + 8, data));
    CHECK(nic.mmio.last_read == 8);
    CHECK(f.pio.read(xover::vmm::layout::kPciIoStart + 4, data));
    CHECK(nic.io.last_read == 4);
}

TEST_CASE("pci: BAR sizing by writing all-ones", "[pci]") {
    TestNic nic;  // declared first: it outlives the bus pointing to it
    Fixture f;
    f.pci.add_device(nic, "nic");
    f.cfg_write(1, 0x04, 0, 2);  // decoding off while sizing, as Linux does
    f.cfg_write(1, 0x10, 0xffffffff);
    CHECK(f.cfg_read(1, 0x10) == 0xfffe0000);  // 128 KiB, 32-bit memory
    f.cfg_write(1, 0x14, 0xffffffff);
    CHECK(f.cfg_read(1, 0x14) == 0xffffffc1);  // 64 ports, I/O
}

TEST_CASE("pci: moving a BAR or toggling COMMAND re-maps it on the bus", "[pci]") {
    TestNic nic;  // declared first: it outlives the bus pointing to it
    Fixture f;
    f.pci.add_device(nic, "nic");
    const std::uint64_t old_base = xover::vmm::layout::kPciMmioStart;
    const std::uint64_t new_base = 0xd0000000;
    std::uint8_t data[4];

    f.cfg_write(1, 0x10, std::uint32_t(new_base));
    CHECK_FALSE(f.mmio.read(old_base, data));
    CHECK(f.mmio.read(new_base + 0x10, data));
    CHECK(nic.mmio.last_read == 0x10);

    f.cfg_write(1, 0x04, 0x0001, 2);  // memory decoding off, I/O on
    CHECK_FALSE(f.mmio.read(new_base, data));
    CHECK(f.pio.read(xover::vmm::layout::kPciIoStart, data));

    f.cfg_write(1, 0x04, 0x0002, 2);  // memory on, I/O off
    CHECK(f.mmio.read(new_base, data));
    CHECK_FALSE(f.pio.read(xover::vmm::layout::kPciIoStart, data));
}

TEST_CASE("pci: a BAR moved over another device is left unmapped", "[pci]") {
    TestNic a, b;  // declared first: they outlive the bus pointing to them
    Fixture f;
    f.pci.add_device(a, "a");
    f.pci.add_device(b, "b");
    std::uint32_t a_base = f.cfg_read(1, 0x10);
    f.cfg_write(2, 0x10, a_base);
    std::uint8_t data[4];
    CHECK(f.mmio.read(a_base, data));
    CHECK(a.mmio.last_read == 0);
    CHECK(b.mmio.last_read == ~0ull);
}
