// The register file: what each register does on read and write, reset
// defaults, EECD/EERD (EEPROM), MDIC (PHY) and the statistics block.
#include <algorithm>

#include "xover/e1000/e1000.hpp"
#include "xover/e1000/window_tx_ledger.hpp"

namespace xover::e1000 {

namespace {
constexpr std::uint32_t kEecdWritable = eecd::SK | eecd::CS | eecd::DI | 0x30 /* FWE */ | eecd::REQ;
constexpr std::uint32_t kLedctlDefault = 0x07068302;
constexpr std::uint32_t kPbaDefault = 0x00000030;  // 48 KiB receive, 16 KiB transmit
constexpr std::uint32_t kVlanEtherType = 0x8100;
constexpr std::uint32_t kRahWritable = RAH_AV | 0x00030000 /* ASEL */ | 0xFFFF;

bool is_statistic(std::uint32_t offset) { return offset >= reg::STATS_FIRST && offset <= reg::STATS_LAST; }
unsigned stat_index(std::uint32_t offset) { return (offset - reg::STATS_FIRST) / 4; }
bool is_octet_low(std::uint32_t offset) {
    return offset == reg::GORCL || offset == reg::GOTCL || offset == reg::TORL || offset == reg::TOTL;
}
bool is_octet_high(std::uint32_t offset) {
    return offset == reg::GORCH || offset == reg::GOTCH || offset == reg::TORH || offset == reg::TOTH;
}
bool is_rah(std::uint32_t offset) { return offset >= reg::RAL0 && offset < reg::RAL0 + 8 * kReceiveAddresses && (offset & 4); }
}  // namespace

std::uint32_t E1000::read_register(std::uint32_t offset) {
    std::lock_guard lock(mutex_);
    ++counters_.mmio_reads;
    offset = offset & (kMmioSize - 1) & ~3u;
    learn_rdt_flush(offset, false);
    return read_locked(offset);
}

void E1000::write_register(std::uint32_t offset, std::uint32_t value) {
    std::lock_guard lock(mutex_);
    ++counters_.mmio_writes;
    offset = offset & (kMmioSize - 1) & ~3u;
    learn_rdt_flush(offset, true);
    write_locked(offset, value);
}

void E1000::set_rdt_posting(std::function<void(bool post)> post) {
    std::lock_guard lock(mutex_);
    rdt_posting_ = std::move(post);
}

void E1000::rdt_posting_stale() {
    std::lock_guard lock(mutex_);
    ++counters_.rdt_posting_stale;
    rdt_flush_.stale();
}

// Each RX refill is an RDT write; a driver that flushes it (reads STATUS
// next) pays two userspace exits per refill. Posting RDT leaves one.
void E1000::learn_rdt_flush(std::uint32_t offset, bool write) {
    if (rdt_posting_ && rdt_flush_.observe(write && offset == reg::RDT, [this] { return now(); })) {
        ++counters_.rdt_posting_started;
        rdt_posting_(true);
    }
}

void E1000::reset_locked() {
    if (rdt_flush_.posting()) {
        rdt_flush_.stop();
        if (rdt_posting_) rdt_posting_(false);  // a new driver has to show it flushes
    }
    std::fill(regs_.begin(), regs_.end(), 0);
    stats_.fill(0);
    take_icr();
    set_ims_value(0);
    io_address_ = 0;
    r(reg::CTRL) = ctrl::FD | ctrl::ASDE | ctrl::SPEED_1000;
    r(reg::LEDCTL) = kLedctlDefault;
    r(reg::PBA) = kPbaDefault;
    r(reg::VET) = kVlanEtherType;
    r(reg::RXCSUM) = rxcsum::IPOFL | rxcsum::TUOFL;
    // The MAC auto-loads its address from the EEPROM into RAL0/RAH0.
    r(reg::RAL0) = std::uint32_t(eeprom_.word(0)) | std::uint32_t(eeprom_.word(1)) << 16;
    r(reg::RAH0) = std::uint32_t(eeprom_.word(2)) | RAH_AV;
    phy_.reset();
    eeprom_.reset_interface();
    tx_context_ = {};
    reset_tx_frame();
    tx_pending_ = {};
    itr_deadline_ = tx_delay_deadline_ = tx_abs_deadline_ = rx_delay_deadline_ = rx_abs_deadline_ = 0;
    raised_before_ = false;
    if (shared_) {
        set_rdh(0);
        shared_->publish_rdt(0);
        publish_rx_config();
        publish_rx_filter();
        publish_irq_moderation();
        shared_->take_rx_irq_deferred();  // frames of the old ring owe nothing
        forget_window_slots();
    }
    update_irq();
}

std::uint32_t E1000::read_locked(std::uint32_t offset) {
    switch (offset) {
    case reg::CTRL:
        return r(reg::CTRL) & ~ctrl::RST;
    case reg::STATUS:
        return link_up_ ? status::LU | status::FD | status::SPEED_1000 : 0;
    case reg::EECD:
        return eecd_value();
    case reg::RDH:
        return rdh();
    case reg::TDH:
        // Window mode: slots still lent to the peer are not done yet.
        if (shared_) {
            auto lent = window_tx::lent(shared_->e1000.window_tx);
            if (lent.any()) return lent.done;
        }
        return r(reg::TDH);
    case reg::ICR: {
        // Read-to-clear: the driver's interrupt handler acknowledges here.
        std::uint32_t value = take_icr();
        update_irq();
        return value;
    }
    case reg::IMS:
        return ims_;
    case reg::ICS:
    case reg::IMC:
        return 0;  // write-only
    default:
        if (is_statistic(offset)) return read_statistic(offset);
        return r(offset);
    }
}

void E1000::write_locked(std::uint32_t offset, std::uint32_t value) {
    switch (offset) {
    case reg::CTRL: {
        if (value & ctrl::RST) {
            reset_locked();  // self-clearing: nothing of the write survives
            return;
        }
        if ((value & ctrl::PHY_RST) && !(r(reg::CTRL) & ctrl::PHY_RST)) phy_.reset();
        r(reg::CTRL) = value;
        publish_filter_word(reg::CTRL);  // VME: crossover producers strip tags too
        return;
    }
    case reg::STATUS:
        return;  // read-only
    case reg::EECD:
        write_eecd(value);
        return;
    case reg::EERD:
        write_eerd(value);
        return;
    case reg::MDIC:
        write_mdic(value);
        return;
    case reg::ICR:
        clear_icr(value);  // write-1-to-clear
        update_irq();
        return;
    case reg::ICS:
        raise(value & icr::VALID);
        return;
    case reg::IMS:
        set_ims_value(ims_ | (value & icr::VALID));
        update_irq();
        return;
    case reg::IMC:
        set_ims_value(ims_ & ~value);
        update_irq();
        return;
    case reg::ITR:
        r(offset) = value & 0xFFFF;
        publish_irq_moderation();
        return;
    case reg::RCTL: {
        bool was_enabled = r(reg::RCTL) & rctl::EN;
        r(offset) = value;
        if (shared_)
            publish_rx_config();  // also wakes producers
        else if (!was_enabled && (value & rctl::EN))
            backend_.rx_space_available();
        return;
    }
    case reg::RDBAL:
    case reg::TDBAL:
        r(offset) = value & ~0xFu;  // descriptor rings are 16-byte aligned
        if (offset == reg::RDBAL) publish_rx_config();
        if (offset == reg::TDBAL) tx_ring_moved();
        return;
    case reg::TDBAH:
        r(offset) = value;
        tx_ring_moved();
        return;
    case reg::RDBAH:
        r(offset) = value;
        publish_rx_config();
        return;
    case reg::RDLEN:
    case reg::TDLEN:
        r(offset) = value & 0xFFF80;  // multiple of 128 bytes, 20 bits
        if (offset == reg::RDLEN) publish_rx_config();
        if (offset == reg::TDLEN) tx_ring_moved();
        return;
    case reg::RDH:
        set_rdh(value & 0xFFFF);
        return;
    case reg::RDT:
        r(offset) = value & 0xFFFF;
        if (shared_) shared_->publish_rdt(value & 0xFFFF);
        rx_space_returned();
        return;
    case reg::RDTR:
        r(offset) = value & 0xFFFF;
        publish_irq_moderation();
        if ((value & DELAY_FPD) && (rx_delay_deadline_ || rx_abs_deadline_)) {
            rx_delay_deadline_ = rx_abs_deadline_ = 0;
            raise(icr::RXT0);
        }
        return;
    case reg::TIDV:
        r(offset) = value & 0xFFFF;
        publish_tx_queue();
        if ((value & DELAY_FPD) && (tx_delay_deadline_ || tx_abs_deadline_)) {
            tx_delay_deadline_ = tx_abs_deadline_ = 0;
            raise(icr::TXDW);
        }
        return;
    case reg::RADV:
    case reg::TADV:
        r(offset) = value & 0xFFFF;
        if (offset == reg::TADV) publish_tx_queue();
        return;
    case reg::TCTL: {
        bool was_enabled = r(reg::TCTL) & tctl::EN;
        r(offset) = value;
        if (!was_enabled && (value & tctl::EN)) process_tx();
        return;
    }
    case reg::TDH:
        // Moving the head under a live ring abandons the frame in progress.
        r(offset) = value & 0xFFFF;
        reset_tx_frame();
        tx_pending_ = {};
        forget_window_slots();
        return;
    case reg::TDT:
        r(offset) = value & 0xFFFF;
        ++counters_.tdt_writes;
        process_tx();
        return;
    default:
        if (is_statistic(offset)) return;  // read-only counters
        if (is_rah(offset)) value &= kRahWritable;
        r(offset) = value;
        publish_filter_word(offset);  // RAL/RAH, MTA, VFTA, VET, RXCSUM: what crossover producers read
        return;
    }
}

// --- EEPROM -----------------------------------------------------------------

std::uint32_t E1000::eecd_value() const {
    std::uint32_t value = r(reg::EECD) | eecd::PRES;  // EE_SIZE 0: 64-word part
    if (value & eecd::REQ) value |= eecd::GNT;          // no on-chip contender
    if (eeprom_.data_out()) value |= eecd::DO;
    return value;
}

void E1000::write_eecd(std::uint32_t value) {
    r(reg::EECD) = value & kEecdWritable;
    // The pins reach the EEPROM only while software owns the interface.
    if (value & eecd::REQ)
        eeprom_.drive(value & eecd::CS, value & eecd::SK, value & eecd::DI);
    else
        eeprom_.reset_interface();
}

void E1000::write_eerd(std::uint32_t value) {
    if (!(value & eerd::START)) {
        r(reg::EERD) = value & ~(eerd::DONE | 0xFFFF0000u);
        return;
    }
    std::uint32_t address = (value >> eerd::ADDR_SHIFT) & 0xFF;
    std::uint32_t data = eeprom_.word(address);  // beyond the part: reads as erased
    r(reg::EERD) = data << eerd::DATA_SHIFT | address << eerd::ADDR_SHIFT | eerd::DONE;
}

// --- PHY --------------------------------------------------------------------

void E1000::write_mdic(std::uint32_t value) {
    unsigned phy = (value >> mdic::PHY_SHIFT) & 0x1F;
    unsigned regnum = (value >> mdic::REG_SHIFT) & 0x1F;
    std::uint32_t op = value & (3u << 26);
    std::uint32_t result = value & ~(mdic::READY | mdic::ERROR);
    if (phy != kPhyAddress || (op != mdic::OP_READ && op != mdic::OP_WRITE)) {
        result |= mdic::ERROR;  // nothing answers at that address
    } else if (op == mdic::OP_READ) {
        result = (result & ~0xFFFFu) | phy_.read(regnum);
    } else {
        phy_.write(regnum, std::uint16_t(value));
    }
    // The MDI transaction completes at once.
    r(reg::MDIC) = result | mdic::READY;
    if (value & mdic::INT) raise(icr::MDAC);
}

// --- Statistics ---------------------------------------------------------------

std::uint32_t E1000::read_statistic(std::uint32_t offset) {
    if (is_octet_low(offset)) return std::uint32_t(stats_[stat_index(offset)]);
    if (is_octet_high(offset)) {
        // 64-bit counters reset when their upper half is read.
        std::uint64_t& counter = stats_[stat_index(offset - 4)];
        std::uint32_t high = std::uint32_t(counter >> 32);
        counter = 0;
        return high;
    }
    std::uint64_t& counter = stats_[stat_index(offset)];
    std::uint32_t value = std::uint32_t(std::min<std::uint64_t>(counter, 0xFFFFFFFFu));
    counter = 0;
    return value;
}

void E1000::stat_add(std::uint32_t offset, std::uint64_t n) {
    std::uint64_t& counter = stats_[stat_index(offset)];
    counter = std::min<std::uint64_t>(counter + n, 0xFFFFFFFFu);  // sticks at all-ones
}

void E1000::stat_add_octets(std::uint32_t low_offset, std::uint64_t n) {
    std::uint64_t& counter = stats_[stat_index(low_offset)];
    counter = counter + n < counter ? ~0ull : counter + n;
}

void E1000::count_size_bin(std::uint32_t first_bin, std::size_t length) {
    static constexpr std::size_t kBinTop[] = {64, 127, 255, 511, 1023};
    unsigned bin = 0;
    while (bin < 5 && length > kBinTop[bin]) ++bin;
    stat_add(first_bin + 4 * bin);
}

}  // namespace xover::e1000
