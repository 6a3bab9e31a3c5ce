// The e1000's crossover side: with a NicPort attached, the registers that
// producers in other processes touch (RDH, ICR, IMS) live in the port's
// shared page, and what producers must honour is published there whenever
// the guest changes it: the RX ring description, the receive filter's
// registers and whether RXT0 is moderated (RDTR/ITR). Without a port
// everything stays in the device (the fast local path, no atomics).
#include "xover/e1000/e1000.hpp"
#include "xover/e1000/rx_filter.hpp"

namespace xover::e1000 {

static_assert(rx_filter::kWords == nic::kRxFilterWords, "the shared page holds every filter register");

void E1000::attach_crossover(nic::NicPort& port) {
    std::lock_guard lock(mutex_);
    port_ = &port;
    shared_ = &port.shared();
    shared_->icr.store(icr_, std::memory_order_seq_cst);
    shared_->set_ims(ims_);
    rx_changes_.forget();  // a new page: everything goes out
    rx_changes_.make(port, {.rdh = r(reg::RDH)});
    shared_->publish_rdt(r(reg::RDT));
    publish_rx_config();
    publish_rx_filter();
    publish_irq_moderation();
    publish_tx_queue();
    link_up_ = carrier();
    phy_.set_link(link_up_);
}

bool E1000::carrier() const { return port_ ? port_->carrier() : backend_.link_up(); }

std::uint32_t E1000::icr_value() const { return shared_ ? shared_->icr.load(std::memory_order_seq_cst) : icr_; }

// Only this process clears ICR bits, under the device lock we hold, so a
// cause seen set stays set: skipping the locked OR then loses nothing and
// keeps the shared cache line clean in the common case (a polled guest
// never reads ICR, so TXDW stays set frame after frame).
void E1000::or_icr(std::uint32_t causes) {
    if (shared_) {
        if ((shared_->icr.load(std::memory_order_seq_cst) & causes) != causes)
            shared_->icr.fetch_or(causes, std::memory_order_seq_cst);
    } else
        icr_ |= causes;
}

std::uint32_t E1000::take_icr() {
    if (shared_) return shared_->take_icr();
    std::uint32_t value = icr_;
    icr_ = 0;
    return value;
}

void E1000::clear_icr(std::uint32_t causes) {
    if (shared_)
        shared_->icr.fetch_and(~causes, std::memory_order_seq_cst);
    else
        icr_ &= ~causes;
}

// After the mask changes, causes a producer set meanwhile are seen by
// update_irq() (it reads ICR after this store: the shared-page rule).
void E1000::set_ims_value(std::uint32_t value) {
    ims_ = value;
    if (shared_) shared_->set_ims(value);
}

std::uint32_t E1000::rdh() const { return shared_ ? shared_->owner_rdh() : r(reg::RDH); }

void E1000::set_rdh(std::uint32_t value) {
    r(reg::RDH) = value;
    if (shared_) rx_changes_.make(*port_, {.rdh = value});  // never waits for a producer (nic/rx_change.hpp)
}

// What a producer needs to place frames: ring base and size, buffer size,
// whether the FCS is stripped, and whether receiving is on at all.
void E1000::publish_rx_config() {
    if (!shared_) return;
    nic::SharedNicState::RxRing ring;
    ring.kind = nic::RxRingKind::E1000Legacy;
    ring.ring_gpa = (std::uint64_t(r(reg::RDBAH)) << 32) | r(reg::RDBAL);
    ring.ring_entries = rx_ring_size();
    ring.buffer_size = rx_buffer_size();
    ring.features = (r(reg::RCTL) & rctl::SECRC) ? nic::kRxStripCrc : 0;
    shared_->e1000.set_filter_word(rx_filter::kRctlWord, r(reg::RCTL));  // UPE/MPE/BAM/MO/VFE
    // No batch starts with the old description once this returns; one in
    // flight may finish with it, as DMA in flight does on hardware.
    rx_changes_.make(*port_, {.ring = ring, .enabled = (r(reg::RCTL) & rctl::EN) && bus_master_});
    rx_space_returned();
}

// The guest returned RX buffers: the port may move frames a peer parked
// for us into them right here (TX handoff); their RXT0 is ours to raise.
void E1000::rx_space_returned() {
    if (port_) {
        switch (port_->rx_space_returned()) {
        case nic::NicPort::OwnRx::None: break;
        case nic::NicPort::OwnRx::Interrupt: update_irq(); break;  // RXT0 is set in ICR
        case nic::NicPort::OwnRx::Moderated:
            if (shared_->take_rx_irq_deferred()) signal_rx_frame();
            break;
        }
    }
    backend_.rx_space_available();
}

// A new TX ring: what was parked names descriptors of the old one.
void E1000::tx_ring_moved() {
    if (!port_) return;
    port_->abandon_tx();
    publish_tx_queue();
}

// What a TX view needs to complete our descriptors from another process
// (nic/tx_view.hpp), and the ITR throttle a peer raising TXDW honours. A
// peer's batch of completions already is a batch, so it raises TXDW at once
// rather than after TIDV/TADV: one interrupt per batch, no sooner than ITR.
void E1000::publish_tx_queue() {
    if (!port_) return;
    std::uint64_t base = (std::uint64_t(r(reg::TDBAH)) << 32) | r(reg::TDBAL);
    std::uint64_t interval = timers_enabled() ? std::uint64_t(r(reg::ITR)) * kItrUnitNs : 0;
    port_->publish_tx_queue(nic::TxQueueKind::E1000Legacy, tx_ring_size(), base, 0, 0,
                            interval ? nic::kTxIrqThrottled : 0, std::uint32_t(interval));
}

}  // namespace xover::e1000

namespace xover::e1000 {

// Every filter register, then the flag that makes producers use them
// (release: a producer that sees the flag sees the words). Later changes
// are one word each (publish_filter_word), with no lock: a producer checks
// the next frame against the new word, as a NIC checks the next frame
// after a register write.
void E1000::publish_rx_filter() {
    if (!shared_) return;
    for (unsigned i = 0; i < rx_filter::kWords; ++i) shared_->e1000.set_filter_word(i, r(rx_filter::word_offset(i)));
    shared_->link_flags.fetch_or(nic::kOwnerRxFilter, std::memory_order_release);
}

void E1000::publish_filter_word(std::uint32_t offset) {
    unsigned index = rx_filter::word_index(offset);
    if (!shared_ || index == rx_filter::kWords) return;
    shared_->e1000.set_filter_word(index, r(offset));
}

// Producers inject RXT0 themselves only while nothing delays or throttles
// it; otherwise they hand it to doorbell_rang() (shared_nic_state.hpp).
// Without timers every delay counts as zero (interrupts.cpp), so the fast
// path stays correct then.
void E1000::publish_irq_moderation() {
    if (!shared_) return;
    publish_tx_queue();  // TIDV/TADV/ITR decide who may raise TXDW
    bool moderated = timers_enabled() && (r(reg::RDTR) != 0 || r(reg::ITR) != 0);
    constexpr std::uint32_t flag = nic::kOwnerRxIrqModerated;
    if (moderated)
        shared_->link_flags.fetch_or(flag, std::memory_order_release);
    else
        shared_->link_flags.fetch_and(~flag, std::memory_order_release);
}

// The doorbell: a producer placed frames whose RXT0 we deliver with our
// delay timers and throttle, or returned the RX space we were waiting for.
void E1000::doorbell_rang() {
    {
        std::lock_guard lock(mutex_);
        take_handoff_tx_interrupt();
        if (shared_ && shared_->take_rx_irq_deferred()) {
            ++counters_.rx_peer_moderated;
            signal_rx_frame();
        }
    }
    resume_tx();
}

}  // namespace xover::e1000
