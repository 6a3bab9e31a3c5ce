// Interrupt causes and the INTA# line: ICR/IMS, interrupt throttling (ITR)
// and the receive/transmit interrupt delay timers (RDTR/RADV, TIDV/TADV).
#include "xover/e1000/e1000.hpp"

namespace xover::e1000 {

namespace {
constexpr std::uint64_t kDelayUnitNs = 1024;  // RDTR/RADV/TIDV/TADV count 1.024 us
}  // namespace

std::uint64_t E1000::now() { return timer_.now_ns(); }

void E1000::raise(std::uint32_t causes) {
    or_icr(causes);
    update_irq();
}

// The line follows (ICR & IMS), except that a rising edge may come no
// sooner than ITR * 256 ns after the previous one; a held-back edge is
// delivered by the timer.
void E1000::update_irq() {
    bool want = (icr_value() & ims_) != 0 && !intx_disabled_;
    if (!want) {
        itr_deadline_ = 0;
        if (level_) {
            level_ = false;
            irq_.set_level(false);
        }
        return;
    }
    if (level_) return;
    std::uint64_t interval = std::uint64_t(r(reg::ITR)) * kItrUnitNs;
    std::uint64_t t = 0;
    if (timers_enabled()) {
        t = now();
        // A crossover peer that moved our parked frames may have raised
        // the line since (TXDW): the throttle counts its edge too.
        if (port_ && port_->last_interrupt_ns() > last_raise_ns_) {
            last_raise_ns_ = port_->last_interrupt_ns();
            raised_before_ = true;
        }
        if (interval != 0 && raised_before_ && t < last_raise_ns_ + interval) {
            schedule(itr_deadline_, last_raise_ns_ + interval);
            return;
        }
    }
    itr_deadline_ = 0;
    raised_before_ = true;
    last_raise_ns_ = t;
    if (port_) port_->note_interrupt(t);
    level_ = true;
    ++counters_.interrupts;
    irq_.set_level(true);
}

// A descriptor with RS was written back. With IDE and a TIDV the TXDW cause
// waits for TIDV after the latest such descriptor, or TADV after the first.
void E1000::signal_tx_written_back(bool delayed) {
    std::uint32_t tidv = r(reg::TIDV);
    if (!delayed || tidv == 0 || !timers_enabled()) {
        tx_delay_deadline_ = tx_abs_deadline_ = 0;
        raise(icr::TXDW);
        return;
    }
    std::uint64_t t = now();
    tx_delay_deadline_ = 0;
    schedule(tx_delay_deadline_, t + tidv * kDelayUnitNs);
    std::uint32_t tadv = r(reg::TADV);
    if (tadv != 0 && tx_abs_deadline_ == 0) schedule(tx_abs_deadline_, t + tadv * kDelayUnitNs);
}

// A frame was stored. RXT0 waits for RDTR of quiet after the latest frame,
// or RADV after the first one, when RDTR is set.
void E1000::signal_rx_frame() {
    std::uint32_t rdtr = r(reg::RDTR);
    if (rdtr == 0 || !timers_enabled()) {
        rx_delay_deadline_ = rx_abs_deadline_ = 0;
        raise(icr::RXT0);
        return;
    }
    std::uint64_t t = now();
    rx_delay_deadline_ = 0;
    schedule(rx_delay_deadline_, t + rdtr * kDelayUnitNs);
    std::uint32_t radv = r(reg::RADV);
    if (radv != 0 && rx_abs_deadline_ == 0) schedule(rx_abs_deadline_, t + radv * kDelayUnitNs);
}

void E1000::schedule(std::uint64_t& slot, std::uint64_t deadline) {
    slot = deadline == 0 ? 1 : deadline;
    if (armed_deadline_ == 0 || slot < armed_deadline_) {
        armed_deadline_ = slot;
        timer_.arm(slot);
    }
}

void E1000::arm_timer() {
    std::uint64_t next = 0;
    for (std::uint64_t d : {itr_deadline_, tx_delay_deadline_, tx_abs_deadline_, rx_delay_deadline_, rx_abs_deadline_})
        if (d != 0 && (next == 0 || d < next)) next = d;
    armed_deadline_ = next;
    if (next != 0) timer_.arm(next);
}

void E1000::on_timer() {
    std::lock_guard lock(mutex_);
    if (!timers_enabled()) return;
    std::uint64_t t = now();
    auto due = [t](std::uint64_t d) { return d != 0 && d <= t; };
    std::uint32_t causes = 0;
    if (due(tx_delay_deadline_) || due(tx_abs_deadline_)) {
        tx_delay_deadline_ = tx_abs_deadline_ = 0;
        causes |= icr::TXDW;
    }
    if (due(rx_delay_deadline_) || due(rx_abs_deadline_)) {
        rx_delay_deadline_ = rx_abs_deadline_ = 0;
        causes |= icr::RXT0;
    }
    if (due(itr_deadline_)) itr_deadline_ = 0;
    or_icr(causes);
    update_irq();  // also delivers an edge the throttle held back
    arm_timer();
}

}  // namespace xover::e1000
