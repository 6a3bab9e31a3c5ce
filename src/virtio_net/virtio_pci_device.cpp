#include "xover/virtio_net/virtio_pci_device.hpp"

#include <chrono>
#include <cstring>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <spdlog/spdlog.h>

#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::virtio_net {

namespace {

constexpr std::uint8_t kCapVendor = 0x09;
constexpr std::uint8_t kCapMsix = 0x11;
constexpr std::uint16_t kMsixEnable = 1 << 15;
constexpr std::uint16_t kMsixFunctionMask = 1 << 14;

void put16(std::uint8_t* p, std::uint16_t v) { std::memcpy(p, &v, 2); }
void put32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
void put64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }

bool in(std::uint64_t offset, std::size_t size, std::uint64_t start, std::uint64_t length) {
    return offset >= start && offset - start + size <= length;
}

vmm::RateLimitedLog g_register_log;  // per process is enough for malformed register accesses

}  // namespace

void VirtioPciDevice::BarHandler::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    device_.bar_read(offset, data);
}

void VirtioPciDevice::BarHandler::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    device_.bar_write(offset, data);
}

VirtioPciDevice::VirtioPciDevice(const Identity& id, unsigned queues, std::uint16_t max_queue_size,
                                 vmm::GuestMemory& memory, vmm::MsiController& msi, vmm::IrqLine& intx,
                                 unsigned msix_vectors)
    : vmm::PciDevice(vmm::PciIds{.vendor = kVirtioVendor,
                                 .device = std::uint16_t(0x1040 + id.virtio_device_id),
                                 .class_code = id.class_code,
                                 .revision = 1,  // modern-only devices have revision >= 1
                                 .subsystem_vendor = kVirtioVendor,
                                 .subsystem = id.subsystem}),
      memory_(memory),
      intx_(intx),
      bar_handler_(*this),
      // One vector per queue plus one for configuration changes.
      msix_(msix_vectors ? msix_vectors : queues + 1, msi),
      max_queue_size_(max_queue_size),
      queues_(queues) {
    define_bar(kBar, vmm::PciBar{vmm::PciBar::Kind::Mmio64, kBarSize, &bar_handler_});
    set_interrupt_pin(1);
    build_capabilities();
    for (auto& q : queues_) q.layout.size = max_queue_size_;  // queue_size reads the maximum
}

void VirtioPciDevice::build_capabilities() {
    // struct virtio_pci_cap, minus the id/next header add_capability writes.
    auto vendor_cap = [this](std::uint8_t type, std::uint64_t offset, std::uint64_t length, std::uint32_t extra,
                             bool has_extra) {
        std::uint8_t body[18] = {};
        std::size_t size = has_extra ? 18 : 14;
        body[0] = std::uint8_t(size + 2);  // cap_len
        body[1] = type;
        body[2] = kBar;
        put32(body + 6, std::uint32_t(offset));
        put32(body + 10, std::uint32_t(length));
        if (has_extra) put32(body + 14, extra);
        add_capability(kCapVendor, std::span(body, size));
    };
    vendor_cap(VIRTIO_PCI_CAP_COMMON_CFG, kCommonOffset, kCommonLength, 0, false);
    vendor_cap(VIRTIO_PCI_CAP_NOTIFY_CFG, kNotifyOffset, std::uint64_t(num_queues()) * kNotifyMultiplier,
               kNotifyMultiplier, true);
    vendor_cap(VIRTIO_PCI_CAP_ISR_CFG, kIsrOffset, 1, 0, false);
    vendor_cap(VIRTIO_PCI_CAP_DEVICE_CFG, kDeviceOffset, kDeviceLength, 0, false);

    // VIRTIO_PCI_CAP_PCI_CFG: a window into the BAR through config space
    // (§4.1.4.9); bar, offset, length and data are driver-writable.
    std::uint8_t pci_cfg[18] = {};
    pci_cfg[0] = 20;
    pci_cfg[1] = VIRTIO_PCI_CAP_PCI_CFG;
    std::uint8_t pci_cfg_writable[18] = {};
    pci_cfg_writable[2] = 0xff;
    std::memset(pci_cfg_writable + 6, 0xff, 12);
    pci_cfg_cap_ = add_capability(kCapVendor, pci_cfg, pci_cfg_writable);

    std::uint8_t msix[10] = {};
    put16(msix, std::uint16_t(msix_.size() - 1));  // table size - 1; enable/mask clear
    put32(msix + 2, std::uint32_t(kMsixTableOffset) | kBar);
    put32(msix + 6, std::uint32_t(kMsixPbaOffset) | kBar);
    std::uint8_t writable[10] = {0x00, 0xc0};  // Enable and Function Mask only
    msix_cap_ = add_capability(kCapMsix, msix, writable);
}

// ---------------------------------------------------------------- observers

std::uint8_t VirtioPciDevice::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

std::uint64_t VirtioPciDevice::driver_features() const {
    std::lock_guard lock(mutex_);
    return driver_features_;
}

std::uint64_t VirtioPciDevice::offered_features() const { return kTransportFeatures | device_features(); }

void VirtioPciDevice::start_queue_at(unsigned q, std::uint16_t index) {
    std::lock_guard lock(mutex_);
    if (q >= queues_.size() || !queues_[q].ring.enabled() || live()) return;
    queues_[q].ring.restore({index, index});
}

bool VirtioPciDevice::live() const {
    return (status_ & VIRTIO_CONFIG_S_DRIVER_OK) && !(status_ & VIRTIO_CONFIG_S_NEEDS_RESET);
}

void VirtioPciDevice::remap_queues() {
    std::lock_guard lock(mutex_);
    for (auto& q : queues_)
        if (q.ring.enabled() && !q.ring.remap(memory_)) needs_reset("ring no longer in guest memory");
}

// --------------------------------------------------------------- BAR access

void VirtioPciDevice::bar_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    learn_notify_flush(offset, false);
    bar_read_locked(offset, data, true);
}

void VirtioPciDevice::bar_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    learn_notify_flush(offset, true);
    bar_write_locked(offset, data);
}

void VirtioPciDevice::set_notify_posting(unsigned queue, std::function<void(bool post)> post) {
    std::lock_guard lock(mutex_);
    posted_queue_ = queue;
    notify_posting_ = std::move(post);
}

void VirtioPciDevice::notify_posting_stale() {
    std::lock_guard lock(mutex_);
    ++transport_counters_.notify_posting_stale;
    notify_flush_.stale();
}

// A receiver that notifies its refills and reads a register after each
// (to know the device has seen them) pays two exits per refill; posting
// the notify leaves one. Only notifies that exit are seen here.
void VirtioPciDevice::learn_notify_flush(std::uint64_t offset, bool write) {
    auto now = [] {
        return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
    };
    if (notify_posting_ && notify_flush_.observe(write && offset == notify_offset(posted_queue_), now)) {
        ++transport_counters_.notify_posting_started;
        notify_posting_(true);
    }
}

void VirtioPciDevice::bar_read_locked(std::uint64_t offset, std::span<std::uint8_t> data, bool side_effects) {
    std::memset(data.data(), 0, data.size());
    if (in(offset, data.size(), kCommonOffset, kCommonLength)) {
        common_read(offset - kCommonOffset, data);
    } else if (in(offset, data.size(), kIsrOffset, 4)) {
        // Read-to-clear: reading acknowledges the INTx interrupt.
        if (offset == kIsrOffset) data[0] = isr_;
        if (side_effects) {
            isr_ = 0;
            update_intx();
        }
    } else if (in(offset, data.size(), kDeviceOffset, kDeviceLength)) {
        read_device_config(offset - kDeviceOffset, data);
    } else if (in(offset, data.size(), kMsixTableOffset, msix_.table_bytes())) {
        msix_.table_read(offset - kMsixTableOffset, data);
    } else if (in(offset, data.size(), kMsixPbaOffset, msix_.pba_bytes())) {
        collect_external_interrupts();
        msix_.pba_read(offset - kMsixPbaOffset, data);
    }
}

void VirtioPciDevice::bar_write_locked(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (in(offset, data.size(), kCommonOffset, kCommonLength)) {
        common_write(offset - kCommonOffset, data);
        interrupt_routing_changed();  // status, a queue's vector or enable
    } else if (in(offset, data.size(), kNotifyOffset, std::uint64_t(num_queues()) * kNotifyMultiplier)) {
        std::uint64_t rel = offset - kNotifyOffset;
        if (rel % kNotifyMultiplier == 0) notify_locked(unsigned(rel / kNotifyMultiplier));
    } else if (in(offset, data.size(), kDeviceOffset, kDeviceLength)) {
        write_device_config(offset - kDeviceOffset, data);
    } else if (in(offset, data.size(), kMsixTableOffset, msix_.table_bytes())) {
        collect_external_interrupts();  // an unmask delivers them with the table's own
        msix_.table_write(offset - kMsixTableOffset, data);
        interrupt_routing_changed();
    }
    // ISR and PBA are read-only; everything else is unused.
}

// ------------------------------------------------------------ common config

void VirtioPciDevice::common_read(std::uint64_t offset, std::span<std::uint8_t> data) {
    // Reads have no side effects: render the structure and copy the bytes,
    // which makes any access width work.
    std::uint8_t cfg[kCommonLength] = {};
    std::uint64_t offered = offered_features();
    put32(cfg + VIRTIO_PCI_COMMON_DFSELECT, device_feature_select_);
    put32(cfg + VIRTIO_PCI_COMMON_DF,
          device_feature_select_ < 2 ? std::uint32_t(offered >> (32 * device_feature_select_)) : 0);
    put32(cfg + VIRTIO_PCI_COMMON_GFSELECT, driver_feature_select_);
    put32(cfg + VIRTIO_PCI_COMMON_GF,
          driver_feature_select_ < 2 ? std::uint32_t(driver_features_ >> (32 * driver_feature_select_)) : 0);
    put16(cfg + VIRTIO_PCI_COMMON_MSIX, config_vector_);
    put16(cfg + VIRTIO_PCI_COMMON_NUMQ, std::uint16_t(num_queues()));
    cfg[VIRTIO_PCI_COMMON_STATUS] = status_;
    cfg[VIRTIO_PCI_COMMON_CFGGENERATION] = config_generation_;
    put16(cfg + VIRTIO_PCI_COMMON_Q_SELECT, queue_select_);
    if (queue_select_ < num_queues()) {
        const QueueState& q = queues_[queue_select_];
        put16(cfg + VIRTIO_PCI_COMMON_Q_SIZE, q.layout.size);
        put16(cfg + VIRTIO_PCI_COMMON_Q_MSIX, q.vector);
        put16(cfg + VIRTIO_PCI_COMMON_Q_ENABLE, q.ring.enabled() ? 1 : 0);
        put16(cfg + VIRTIO_PCI_COMMON_Q_NOFF, queue_select_);
        put64(cfg + VIRTIO_PCI_COMMON_Q_DESCLO, q.layout.desc);
        put64(cfg + VIRTIO_PCI_COMMON_Q_AVAILLO, q.layout.avail);
        put64(cfg + VIRTIO_PCI_COMMON_Q_USEDLO, q.layout.used);
        put16(cfg + VIRTIO_PCI_COMMON_Q_NDATA, queue_select_);
    }
    // (a queue that does not exist reads queue_size 0: "not available")
    std::memcpy(data.data(), cfg + offset, data.size());
}

void VirtioPciDevice::common_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::uint64_t value = vmm::load_le(data);
    if (data.size() == 8) {
        // A 64-bit write to a lo/hi register pair is two 32-bit writes.
        common_write_field(offset, 4, std::uint32_t(value));
        common_write_field(offset + 4, 4, std::uint32_t(value >> 32));
        return;
    }
    common_write_field(offset, unsigned(data.size()), std::uint32_t(value));
}

void VirtioPciDevice::common_write_field(std::uint64_t offset, unsigned width, std::uint32_t value) {
    auto expect = [&](unsigned w) {
        if (width == w) return true;
        ++transport_counters_.bad_register_accesses;
        if (g_register_log.allow())
            spdlog::warn("virtio-pci: {}-byte write to common config offset {:#x} ignored", width, offset);
        return false;
    };
    bool queue_ok = queue_select_ < num_queues();
    QueueState* q = queue_ok ? &queues_[queue_select_] : nullptr;
    // Queue registers are frozen once the queue is enabled (§4.1.4.3.2).
    bool queue_writable = q && !q->ring.enabled();
    bool features_writable = !(status_ & VIRTIO_CONFIG_S_FEATURES_OK);
    auto set_half = [](std::uint64_t& reg, unsigned half, std::uint32_t v) {
        reg = half ? (reg & 0xffffffffull) | (std::uint64_t(v) << 32) : (reg & ~0xffffffffull) | v;
    };

    switch (offset) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        if (expect(4)) device_feature_select_ = value;
        break;
    case VIRTIO_PCI_COMMON_GFSELECT:
        if (expect(4)) driver_feature_select_ = value;
        break;
    case VIRTIO_PCI_COMMON_GF:
        if (expect(4) && features_writable && driver_feature_select_ < 2)
            set_half(driver_features_, driver_feature_select_, value);
        break;
    case VIRTIO_PCI_COMMON_MSIX:
        // A vector we cannot map reads back as NO_VECTOR (§4.1.5.1.2).
        if (expect(2)) config_vector_ = value < msix_.size() ? std::uint16_t(value) : kNoVector;
        break;
    case VIRTIO_PCI_COMMON_STATUS:
        if (expect(1)) write_status(std::uint8_t(value));
        break;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        if (expect(2)) queue_select_ = std::uint16_t(value);
        break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (expect(2) && queue_writable) q->layout.size = std::uint16_t(value);
        break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        if (expect(2) && q) q->vector = value < msix_.size() ? std::uint16_t(value) : kNoVector;
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        // Writing 0 is not allowed (§4.1.4.3.2); queues stop at reset.
        if (expect(2) && queue_writable && value == 1) enable_queue(queue_select_);
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        if (expect(4) && queue_writable) set_half(q->layout.desc, offset == VIRTIO_PCI_COMMON_Q_DESCHI, value);
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        if (expect(4) && queue_writable) set_half(q->layout.avail, offset == VIRTIO_PCI_COMMON_Q_AVAILHI, value);
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (expect(4) && queue_writable) set_half(q->layout.used, offset == VIRTIO_PCI_COMMON_Q_USEDHI, value);
        break;
    default:
        break;  // read-only or reserved
    }
}

void VirtioPciDevice::write_status(std::uint8_t value) {
    if (value == 0) {
        reset_locked();
        return;
    }
    std::uint8_t old = status_;
    if ((value & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
        // Accept only what we offered, and only the modern interface.
        bool subset = (driver_features_ & ~offered_features()) == 0;
        bool modern = driver_features_ >> VIRTIO_F_VERSION_1 & 1;
        if (!subset || !modern) {
            value &= std::uint8_t(~VIRTIO_CONFIG_S_FEATURES_OK);
            spdlog::info("virtio-pci: refusing driver features {:#x} (offered {:#x})", driver_features_,
                         offered_features());
        }
    }
    std::uint8_t next = std::uint8_t(old | (value & ~VIRTIO_CONFIG_S_NEEDS_RESET));
    // DRIVER_OK without FEATURES_OK is a driver bug: do not start.
    if (!(next & VIRTIO_CONFIG_S_FEATURES_OK)) next &= std::uint8_t(~VIRTIO_CONFIG_S_DRIVER_OK);
    status_ = next;
    if ((next & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
        // One line per driver start: what a real driver chose (features,
        // interrupt mode) is the first thing to check when one misbehaves.
        spdlog::debug("virtio-pci: DRIVER_OK features={:#x} msix={} config_vector={}", driver_features_,
                      msix_.enabled() ? "on" : "off", config_vector_);
        if (live()) activated();
    }
}

void VirtioPciDevice::enable_queue(unsigned q) {
    QueueState& s = queues_[q];
    const VirtqueueLayout& l = s.layout;
    bool size_ok = l.size != 0 && l.size <= max_queue_size_ && (l.size & (l.size - 1)) == 0;
    if (!size_ok || !s.ring.enable(memory_, l, negotiated(spec::kFeatureEventIdx),
                                   negotiated(spec::kFeatureIndirectDesc))) {
        ++transport_counters_.hostile;
        needs_reset("queue configuration invalid (size or ring address)");
    }
}

void VirtioPciDevice::reset_locked() {
    if (notify_flush_.posting()) {
        notify_flush_.stop();
        if (notify_posting_) notify_posting_(false);  // a new driver has to show it flushes
    }
    for (auto& q : queues_) {
        q.ring.disable();
        q.layout = VirtqueueLayout{.size = max_queue_size_};
        q.vector = kNoVector;
    }
    status_ = 0;
    isr_ = 0;
    device_feature_select_ = driver_feature_select_ = 0;
    driver_features_ = 0;
    config_vector_ = kNoVector;
    queue_select_ = 0;
    update_intx();
    device_reset();
}

// ------------------------------------------------------------ notifications

void VirtioPciDevice::queue_notify(unsigned queue) {
    std::lock_guard lock(mutex_);
    notify_locked(queue);
}

void VirtioPciDevice::notify_locked(unsigned queue) {
    ++transport_counters_.notifies;
    if (queue < num_queues() && queue_live(queue)) queue_notified(queue);
}

// --------------------------------------------------------------- interrupts

void VirtioPciDevice::maybe_interrupt(unsigned q) {
    if (!queue(q).should_interrupt()) {
        ++transport_counters_.interrupts_suppressed;
        return;
    }
    interrupt_queue(q);
}

void VirtioPciDevice::interrupt_queue(unsigned q) {
    if (q >= queues_.size()) return;
    ++transport_counters_.interrupts;
    if (msix_.enabled()) {
        signal_vector(queues_[q].vector);
    } else {
        isr_ |= spec::kIsrQueue;
        update_intx();
    }
}

void VirtioPciDevice::config_changed() {
    ++config_generation_;
    if (!(status_ & VIRTIO_CONFIG_S_DRIVER_OK)) return;
    // The ISR bit is set in both modes (§4.1.4.5.1).
    isr_ |= spec::kIsrConfig;
    ++transport_counters_.interrupts;
    if (msix_.enabled()) signal_vector(config_vector_);
    else update_intx();
}

void VirtioPciDevice::needs_reset(const char* why) {
    ++transport_counters_.needs_reset;
    static vmm::RateLimitedLog log;
    if (log.allow()) spdlog::warn("virtio-pci {:04x}: {}; device needs reset", config16(0x02), why);
    if (status_ & VIRTIO_CONFIG_S_NEEDS_RESET) return;
    status_ |= VIRTIO_CONFIG_S_NEEDS_RESET;
    config_changed();
}

void VirtioPciDevice::signal_vector(std::uint16_t vector) {
    if (vector == kNoVector) return;  // the driver asked for no interrupt
    msix_.signal(vector);
}

void VirtioPciDevice::update_intx() {
    // INTx only when MSI-X is off and the guest has not disabled it.
    bool level = isr_ != 0 && !msix_.enabled() && !intx_disabled();
    if (level == intx_level_) return;
    intx_level_ = level;
    intx_.set_level(level);
}

void VirtioPciDevice::config_written(std::uint32_t offset, std::uint32_t length) {
    std::lock_guard lock(mutex_);
    std::uint32_t control = msix_cap_ + 2u;
    if (offset < control + 2 && offset + length > control) {
        std::uint16_t mc = config16(control);
        // Pending while the function was masked: into the table, to be sent
        // on unmask. (MSI-X turned off: they stay outside and go out as INTx.)
        if (mc & kMsixEnable) collect_external_interrupts();
        msix_.set_control(mc & kMsixEnable, mc & kMsixFunctionMask);
        interrupt_routing_changed();
    }
    update_intx();  // MSI-X enable or COMMAND.INTx-disable may have changed
    pci_cfg_access(offset, length);
}

void VirtioPciDevice::pci_cfg_access(std::uint32_t offset, std::uint32_t length) {
    // Layout of the capability: header(2) cap_len cfg_type bar id pad(2)
    // offset(4) length(4) data(4).
    std::uint32_t cap = pci_cfg_cap_;
    std::uint32_t window = cap + 4, data = cap + 16;
    if (offset + length <= window || offset >= data + 4) return;
    std::uint8_t bar = config_byte(cap + 4);
    std::uint32_t at = config32(cap + 8);
    std::uint32_t len = config32(cap + 12);
    bool valid = bar == kBar && (len == 1 || len == 2 || len == 4) && at % len == 0 && std::uint64_t(at) + len <= kBarSize;
    if (!valid) return;
    if (offset < data + 4 && offset + length > data) {
        // The driver wrote pci_cfg_data: forward it to the BAR.
        std::uint8_t bytes[4] = {config_byte(data), config_byte(data + 1), config_byte(data + 2), config_byte(data + 3)};
        bar_write_locked(at, std::span<const std::uint8_t>(bytes, len));
    } else {
        // The driver moved the window: pci_cfg_data now shows the BAR
        // there. Config reads cannot be intercepted, so the value is
        // loaded here, without read side effects (ISR stays set).
        std::uint8_t bytes[4] = {};
        bar_read_locked(at, std::span(bytes, len), false);
        for (int i = 0; i < 4; ++i) config_byte(data + i) = bytes[i];
    }
}

}  // namespace xover::virtio_net
