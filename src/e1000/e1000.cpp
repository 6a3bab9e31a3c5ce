// Construction, PCI identity and the two BAR windows onto the registers.
#include "xover/e1000/e1000.hpp"

#include <chrono>

namespace xover::e1000 {

E1000::E1000(vmm::GuestMemory& memory, vmm::IrqLine& irq, net::Backend& backend, const net::MacAddress& mac,
             std::string name)
    : vmm::PciDevice(kPciIds),
      memory_(memory),
      irq_(irq),
      backend_(backend),
      name_(std::move(name)),
      eeprom_(mac, Eeprom::Ids{kPciIds.vendor, kPciIds.device, kPciIds.subsystem_vendor, kPciIds.subsystem}),
      regs_(kMmioSize / 4, 0),
      tx_buffer_(kMaxTxFrame + 64, 0),
      tx_segment_(kMaxTxFrame + 64, 0) {
    define_bar(kMmioBar, {vmm::PciBar::Kind::Mmio32, kMmioSize, &mmio_bar_});
    define_bar(kIoBar, {vmm::PciBar::Kind::Io, kIoSize, &io_bar_});
    set_interrupt_pin(1);
    timer_.now_ns = [] {
        return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
    };
    link_up_ = backend_.link_up();
    phy_.set_link(link_up_);
    std::lock_guard lock(mutex_);
    reset_locked();
}

E1000::~E1000() = default;

void E1000::config_written(std::uint32_t, std::uint32_t) {
    // Cache the COMMAND bits the data path needs, under the device lock,
    // so DMA and the interrupt line never race with the host bridge.
    std::lock_guard lock(mutex_);
    bool was_master = bus_master_;
    bus_master_ = bus_master();
    intx_disabled_ = intx_disabled();
    if (bus_master_ != was_master) publish_rx_config();
    update_irq();
}

void E1000::set_interrupt_timer(InterruptTimer timer) {
    std::lock_guard lock(mutex_);
    if (!timer.now_ns) timer.now_ns = timer_.now_ns;
    timer_ = std::move(timer);
    armed_deadline_ = 0;
    publish_irq_moderation();
}

bool E1000::irq_level() const {
    std::lock_guard lock(mutex_);
    return level_;
}

void E1000::link_changed() {
    std::lock_guard lock(mutex_);
    bool up = carrier();
    if (up == link_up_) return;
    link_up_ = up;
    phy_.set_link(link_up_);
    raise(icr::LSC);
}

RxRingState E1000::rx_ring_state() const {
    std::lock_guard lock(mutex_);
    RxRingState s;
    s.base = (std::uint64_t(r(reg::RDBAH)) << 32) | r(reg::RDBAL);
    s.descriptors = rx_ring_size();
    s.head = rdh();
    s.tail = r(reg::RDT);
    s.buffer_size = rx_buffer_size();
    s.enabled = r(reg::RCTL) & rctl::EN;
    s.strip_crc = r(reg::RCTL) & rctl::SECRC;
    return s;
}

net::Counters E1000::counters() const {
    std::lock_guard lock(mutex_);
    net::Counters out;
    const nic::RxTally rx = nic::received(counters_.backend_rx, port_);
    counters_.append_to(out, {.rx_frames = rx.frames, .rx_bytes = rx.bytes});
    if (port_) port_->append_counters(out);
    return out;
}

// BAR0: registers are 32 bits wide; narrower or wider accesses are split
// into / merged with the containing dwords.
void E1000::MmioBar::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::uint64_t value = 0;
    std::uint64_t aligned = offset & ~std::uint64_t(3);
    unsigned shift = unsigned(offset - aligned) * 8;
    std::size_t dwords = (shift / 8 + data.size() + 3) / 4;
    for (std::size_t i = 0; i < dwords && i < 2; ++i)
        value |= std::uint64_t(nic_.read_register(std::uint32_t(aligned + 4 * i))) << (32 * i);
    vmm::store_le(data, value >> shift);
}

void E1000::MmioBar::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::uint64_t aligned = offset & ~std::uint64_t(3);
    if (offset == aligned && data.size() == 4) {
        nic_.write_register(std::uint32_t(offset), std::uint32_t(vmm::load_le(data)));
        return;
    }
    if (offset == aligned && data.size() == 8) {
        std::uint64_t v = vmm::load_le(data);
        nic_.write_register(std::uint32_t(offset), std::uint32_t(v));
        nic_.write_register(std::uint32_t(offset + 4), std::uint32_t(v >> 32));
        return;
    }
    // Sub-dword write: hardware merges byte enables into the register;
    // registers with read side effects are not meant to be written this way.
    if (data.size() > 4 || (offset - aligned) + data.size() > 4) return;
    unsigned shift = unsigned(offset - aligned) * 8;
    std::uint32_t mask = std::uint32_t(((1ull << (8 * data.size())) - 1) << shift);
    std::uint32_t current = nic_.read_register(std::uint32_t(aligned));
    std::uint32_t merged = (current & ~mask) | (std::uint32_t(vmm::load_le(data)) << shift & mask);
    nic_.write_register(std::uint32_t(aligned), merged);
}

// BAR1: IOADDR at 0 selects a register, IODATA at 4 accesses it.
void E1000::IoBar::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::uint32_t value = 0;
    if (offset == 0) {
        std::lock_guard lock(nic_.mutex_);
        value = nic_.io_address_;
    } else if (offset == 4) {
        std::uint32_t address;
        {
            std::lock_guard lock(nic_.mutex_);
            address = nic_.io_address_;
        }
        value = nic_.read_register(address);
    }
    vmm::store_le(data, value);
}

void E1000::IoBar::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::uint32_t value = std::uint32_t(vmm::load_le(data));
    if (offset == 0) {
        std::lock_guard lock(nic_.mutex_);
        nic_.io_address_ = value & (kMmioSize - 1) & ~3u;
    } else if (offset == 4) {
        std::uint32_t address;
        {
            std::lock_guard lock(nic_.mutex_);
            address = nic_.io_address_;
        }
        nic_.write_register(address, value);
    }
}

}  // namespace xover::e1000
