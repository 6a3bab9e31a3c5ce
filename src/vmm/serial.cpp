#include "xover/vmm/serial.hpp"

namespace xover::vmm {

Serial16550::Serial16550(IrqLine* irq, Output output) : irq_(irq), output_(std::move(output)) {}

void Serial16550::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    // Wider accesses read consecutive registers, as on an 8-bit bus.
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint64_t reg = offset + i;
        data[i] = reg < 8 ? read_register(unsigned(reg)) : 0xff;
    }
    update_irq();
}

void Serial16550::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint64_t reg = offset + i;
        if (reg < 8) write_register(unsigned(reg), data[i]);
    }
    update_irq();
}

void Serial16550::receive(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    if (mcr_ & kMcrLoop) return;  // in loopback the line is disconnected
    for (auto b : bytes) push_rx(b);
    update_irq();
}

void Serial16550::push_rx(std::uint8_t byte) {
    if (rx_.size() >= kRxFifoSize) {
        lsr_errors_ |= kLsrOverrun;
        return;
    }
    rx_.push_back(byte);
}

std::uint8_t Serial16550::modem_status() const {
    std::uint8_t status;
    if (mcr_ & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        status = std::uint8_t(((mcr_ & kMcrRts) ? 0x10 : 0) | ((mcr_ & kMcrDtr) ? 0x20 : 0) |
                              ((mcr_ & kMcrOut1) ? 0x40 : 0) | ((mcr_ & kMcrOut2) ? 0x80 : 0));
    } else {
        status = 0xb0;  // DCD, DSR, CTS: a terminal is always attached
    }
    return std::uint8_t(status | msr_deltas_);
}

std::uint8_t Serial16550::interrupt_identification() const {
    std::uint8_t fifo = (fcr_ & 0x01) ? kIirFifoEnabled : 0;
    if ((ier_ & kIerLineStatus) && lsr_errors_) return fifo | kIirLineStatus;
    if ((ier_ & kIerRxData) && !rx_.empty()) return fifo | kIirRxData;
    if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return fifo | kIirThrEmpty;
    if ((ier_ & kIerModemStatus) && msr_deltas_) return fifo | kIirModem;
    return fifo | kIirNone;
}

std::uint8_t Serial16550::read_register(unsigned reg) {
    switch (reg) {
    case kRbrThr:
        if (lcr_ & kLcrDlab) return std::uint8_t(divisor_);
        if (rx_.empty()) return 0;
        {
            std::uint8_t byte = rx_.front();
            rx_.pop_front();
            return byte;
        }
    case kIer:
        if (lcr_ & kLcrDlab) return std::uint8_t(divisor_ >> 8);
        return ier_;
    case kIirFcr: {
        std::uint8_t iir = interrupt_identification();
        // Reading IIR while it reports THR empty acknowledges that cause.
        if ((iir & 0x0f) == kIirThrEmpty) thr_empty_pending_ = false;
        return iir;
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: {
        // The transmitter is infinitely fast: THR and shift register are
        // always empty. Reading LSR clears the error bits.
        std::uint8_t lsr = std::uint8_t(kLsrThrEmpty | kLsrTransmitterEmpty | lsr_errors_);
        if (!rx_.empty()) lsr |= kLsrDataReady;
        lsr_errors_ = 0;
        return lsr;
    }
    case kMsr: {
        std::uint8_t msr = modem_status();
        msr_deltas_ = 0;
        return msr;
    }
    case kScr: return scr_;
    }
    return 0xff;
}

void Serial16550::write_register(unsigned reg, std::uint8_t value) {
    switch (reg) {
    case kRbrThr:
        if (lcr_ & kLcrDlab) {
            divisor_ = std::uint16_t((divisor_ & 0xff00) | value);
            return;
        }
        if (mcr_ & kMcrLoop)
            push_rx(value);
        else if (output_)
            output_(value);
        // Sent at once: the holding register is empty again.
        thr_empty_pending_ = true;
        return;
    case kIer:
        if (lcr_ & kLcrDlab) {
            divisor_ = std::uint16_t((divisor_ & 0x00ff) | value << 8);
            return;
        }
        // Enabling the THR-empty interrupt while THR is empty raises it
        // at once (drivers rely on this to start transmitting).
        if ((value & kIerThrEmpty) && !(ier_ & kIerThrEmpty)) thr_empty_pending_ = true;
        ier_ = value & 0x0f;
        return;
    case kIirFcr:
        fcr_ = value & 0xc9;
        if (value & 0x02) rx_.clear();  // clear RX FIFO
        return;
    case kLcr: lcr_ = value; return;
    case kMcr: {
        std::uint8_t before = modem_status();
        mcr_ = value & 0x1f;
        std::uint8_t after = modem_status();
        if (mcr_ & kMcrLoop) {
            // Delta bits: CTS, DSR, trailing edge of RI, DCD.
            std::uint8_t changed = std::uint8_t((before ^ after) & 0xf0);
            if (changed & 0x10) msr_deltas_ |= 0x01;
            if (changed & 0x20) msr_deltas_ |= 0x02;
            if ((before & 0x40) && !(after & 0x40)) msr_deltas_ |= 0x04;
            if (changed & 0x80) msr_deltas_ |= 0x08;
        }
        return;
    }
    case kLsr: return;  // read-only (factory test register)
    case kMsr: return;
    case kScr: scr_ = value; return;
    }
}

void Serial16550::update_irq() {
    // On a PC the UART's interrupt output reaches the PIC/IOAPIC only
    // when OUT2 is set.
    bool level = (interrupt_identification() & kIirNone) == 0 && (mcr_ & kMcrOut2);
    if (level == irq_level_) return;
    irq_level_ = level;
    if (irq_) irq_->set_level(level);
}

}  // namespace xover::vmm
