// The 16550 UART: registers, divisor latch, loopback, and the THR-empty
// interrupt gated by IER.ETBEI and MCR.OUT2.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "xover/vmm/serial.hpp"

namespace {

using xover::vmm::Serial16550;

struct FakeLine : xover::vmm::IrqLine {
    std::vector<bool> changes;
    void set_level(bool high) override { changes.push_back(high); }
    bool level() const { return !changes.empty() && changes.back(); }
};

struct Uart {
    FakeLine irq;
    std::string out;
    Serial16550 uart{&irq, [this](std::uint8_t b) { out.push_back(char(b)); }};
    std::uint8_t in(unsigned reg) {
        std::uint8_t v = 0;
        uart.read(reg, std::span<std::uint8_t>(&v, 1));
        return v;
    }
    void outb(unsigned reg, std::uint8_t v) { uart.write(reg, std::span<const std::uint8_t>(&v, 1)); }
};

}  // namespace

TEST_CASE("uart transmits THR bytes and reports an idle transmitter", "[uart]") {
    Uart u;
    u.outb(0, 'h');
    u.outb(0, 'i');
    CHECK(u.out == "hi");
    CHECK((u.in(Serial16550::kLsr) & 0x60) == 0x60);
    CHECK((u.in(Serial16550::kLsr) & Serial16550::kLsrDataReady) == 0);
    CHECK(u.in(Serial16550::kIirFcr) == Serial16550::kIirNone);
}

TEST_CASE("uart divisor latch hides THR/IER while DLAB is set", "[uart]") {
    Uart u;
    u.outb(Serial16550::kLcr, 0x83);
    u.outb(0, 0x01);  // DLL
    u.outb(1, 0x02);  // DLM
    CHECK(u.out.empty());
    CHECK(u.in(0) == 0x01);
    CHECK(u.in(1) == 0x02);
    u.outb(Serial16550::kLcr, 0x03);
    CHECK(u.in(Serial16550::kLcr) == 0x03);
    CHECK(u.in(1) == 0x00);  // IER untouched
    u.outb(Serial16550::kScr, 0xa5);
    CHECK(u.in(Serial16550::kScr) == 0xa5);
}

TEST_CASE("uart THR-empty interrupt needs ETBEI and OUT2, and IIR read acknowledges it", "[uart]") {
    Uart u;
    u.outb(Serial16550::kIer, Serial16550::kIerThrEmpty);
    CHECK(u.in(Serial16550::kIirFcr) == Serial16550::kIirThrEmpty);  // pending, and now acknowledged
    CHECK_FALSE(u.irq.level());  // OUT2 off: the line stays low
    u.outb(Serial16550::kMcr, Serial16550::kMcrOut2);
    u.outb(0, 'x');
    CHECK(u.irq.level());
    CHECK(u.in(Serial16550::kIirFcr) == Serial16550::kIirThrEmpty);
    CHECK_FALSE(u.irq.level());
    CHECK(u.in(Serial16550::kIirFcr) == Serial16550::kIirNone);
    // Re-enabling ETBEI with THR empty raises it again.
    u.outb(Serial16550::kIer, 0);
    u.outb(Serial16550::kIer, Serial16550::kIerThrEmpty);
    CHECK(u.irq.level());
    u.outb(Serial16550::kMcr, 0);
    CHECK_FALSE(u.irq.level());
}

TEST_CASE("uart receive: data ready, RX interrupt, FIFO reads in order", "[uart]") {
    Uart u;
    u.outb(Serial16550::kMcr, Serial16550::kMcrOut2);
    u.outb(Serial16550::kIer, Serial16550::kIerRxData);
    const std::uint8_t bytes[] = {'a', 'b'};
    u.uart.receive(bytes);
    CHECK(u.irq.level());
    CHECK(u.in(Serial16550::kIirFcr) == Serial16550::kIirRxData);
    CHECK((u.in(Serial16550::kLsr) & Serial16550::kLsrDataReady) != 0);
    CHECK(u.in(0) == 'a');
    CHECK(u.in(0) == 'b');
    CHECK_FALSE(u.irq.level());
    CHECK((u.in(Serial16550::kLsr) & Serial16550::kLsrDataReady) == 0);
}

TEST_CASE("uart loopback returns transmitted bytes and mirrors modem lines", "[uart]") {
    Uart u;
    u.outb(Serial16550::kMcr, Serial16550::kMcrLoop | Serial16550::kMcrRts | Serial16550::kMcrOut2);
    u.outb(0, 0x42);
    CHECK(u.out.empty());
    CHECK(u.in(0) == 0x42);
    std::uint8_t msr = u.in(Serial16550::kMsr);
    CHECK((msr & 0x10) != 0);  // CTS from RTS
    CHECK((msr & 0x80) != 0);  // DCD from OUT2
    CHECK((msr & 0x20) == 0);  // DSR from DTR (off)
}

TEST_CASE("uart RX overrun sets LSR.OE once the FIFO is full", "[uart]") {
    Uart u;
    std::vector<std::uint8_t> lots(Serial16550::kRxFifoSize + 3, 'z');
    u.uart.receive(lots);
    std::uint8_t lsr = u.in(Serial16550::kLsr);
    CHECK((lsr & Serial16550::kLsrOverrun) != 0);
    CHECK((u.in(Serial16550::kLsr) & Serial16550::kLsrOverrun) == 0);  // cleared by the read
}
