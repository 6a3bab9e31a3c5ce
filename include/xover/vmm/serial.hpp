// A 16550A UART (the PC's COM1): enough of it for Linux's 8250 driver and
// the tiny guests — divisor latch, FIFO control, line/modem status,
// loopback, and the interrupt identification logic (RX data, THR empty,
// modem status) driving one interrupt line, gated by MCR.OUT2 as on a PC.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "xover/vmm/interrupts.hpp"
#include "xover/vmm/io_device.hpp"

namespace xover::vmm {

class Serial16550 final : public IoDevice {
public:
    using Output = std::function<void(std::uint8_t)>;

    // `irq` may be null (no interrupts); `output` receives transmitted bytes.
    Serial16550(IrqLine* irq, Output output);

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Bytes typed on the host console (I/O thread).
    void receive(std::span<const std::uint8_t> bytes);

    // Register offsets.
    static constexpr unsigned kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
    static constexpr std::uint8_t kIerRxData = 0x01, kIerThrEmpty = 0x02, kIerLineStatus = 0x04,
                                  kIerModemStatus = 0x08;
    static constexpr std::uint8_t kIirNone = 0x01, kIirModem = 0x00, kIirThrEmpty = 0x02, kIirRxData = 0x04,
                                  kIirLineStatus = 0x06, kIirFifoEnabled = 0xc0;
    static constexpr std::uint8_t kLcrDlab = 0x80;
    static constexpr std::uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08,
                                  kMcrLoop = 0x10;
    static constexpr std::uint8_t kLsrDataReady = 0x01, kLsrOverrun = 0x02, kLsrThrEmpty = 0x20,
                                  kLsrTransmitterEmpty = 0x40;
    static constexpr std::size_t kRxFifoSize = 64;

private:
    std::uint8_t read_register(unsigned reg);
    void write_register(unsigned reg, std::uint8_t value);
    std::uint8_t interrupt_identification() const;
    std::uint8_t modem_status() const;
    void push_rx(std::uint8_t byte);
    void update_irq();

    std::mutex mutex_;
    IrqLine* irq_;
    Output output_;
    std::deque<std::uint8_t> rx_;
    std::uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = 0, scr_ = 0, fcr_ = 0;
    std::uint8_t lsr_errors_ = 0;
    std::uint8_t msr_deltas_ = 0;
    std::uint16_t divisor_ = 12;  // 9600 baud
    bool thr_empty_pending_ = false;
    bool irq_level_ = false;
};

}  // namespace xover::vmm
