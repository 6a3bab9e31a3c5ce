// The modern virtio-pci transport (virtio 1.2 §4.1), shared by virtio
// devices: PCI identity, the vendor capabilities that locate the common,
// notify, ISR and device configuration structures, MSI-X with INTx
// fallback, feature negotiation, device status and reset, and the queue
// registers. A device derives from it and supplies its features, its
// configuration space and what to do when a queue is notified.
//
// BAR layout (one 64-bit memory BAR, kBar):
//   0x0000 common configuration      0x3000 notify (queue q at q * 4)
//   0x1000 ISR status                0x4000 MSI-X table
//   0x2000 device configuration      0x5000 MSI-X PBA
//
// Capabilities: common/notify (multiplier 4)/ISR/device cfg and a
// VIRTIO_PCI_CAP_PCI_CFG window (all BAR 4), and MSI-X (queues + 1
// vectors: one per queue, one for configuration changes).
//
// Notifications: each queue has its own notify address (notify_offset()),
// so the machine registers one ioeventfd per queue there (no datamatch
// needed) and calls queue_notify(q) from the I/O thread; a guest MMIO write
// to the same address lands in queue_notify(q) too.
//
// Threads: one mutex per device. BAR accesses, config space writes,
// queue_notify and the derived device's entry points take it; hooks run
// with it held.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "xover/net/backend.hpp"
#include "xover/virtio_net/msix_table.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/virtio_net/virtqueue.hpp"
#include "xover/vmm/flushed_doorbell.hpp"
#include "xover/vmm/guest_memory.hpp"
#include "xover/vmm/interrupts.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::virtio_net {

class VirtioPciDevice : public vmm::PciDevice {
public:
    static constexpr unsigned kBar = 4;
    static constexpr std::uint64_t kBarSize = 0x8000;
    static constexpr std::uint64_t kCommonOffset = 0x0000;
    static constexpr std::uint64_t kCommonLength = 0x40;
    static constexpr std::uint64_t kIsrOffset = 0x1000;
    static constexpr std::uint64_t kDeviceOffset = 0x2000;
    static constexpr std::uint64_t kDeviceLength = 0x1000;
    static constexpr std::uint64_t kNotifyOffset = 0x3000;
    static constexpr std::uint32_t kNotifyMultiplier = 4;
    static constexpr std::uint64_t kMsixTableOffset = 0x4000;
    static constexpr std::uint64_t kMsixPbaOffset = 0x5000;
    static constexpr std::uint16_t kNoVector = 0xffff;
    static constexpr std::uint16_t kVirtioVendor = 0x1af4;
    // What the transport offers on top of the device's features.
    static constexpr std::uint64_t kTransportFeatures =
        (1ull << spec::kFeatureVersion1) | (1ull << spec::kFeatureIndirectDesc) | (1ull << spec::kFeatureEventIdx);

    ~VirtioPciDevice() override = default;

    // Which BAR holds the notify region, and queue q's offset inside it.
    unsigned notify_bar() const { return kBar; }
    std::uint64_t notify_offset(unsigned queue) const { return kNotifyOffset + std::uint64_t(queue) * kNotifyMultiplier; }
    unsigned num_queues() const { return unsigned(queues_.size()); }

    // The driver notified `queue` (ioeventfd or MMIO write).
    void queue_notify(unsigned queue);

    // Notify posting (vmm/posted_writes.hpp) for `queue`, the one a
    // receiver refills: once the driver is seen to flush its notifies of
    // it with another access (vmm/flushed_doorbell.hpp), `post(true)` runs
    // with the device lock held; `post(false)` at reset. The owner reports
    // a posted notify that went stale with notify_posting_stale().
    void set_notify_posting(unsigned queue, std::function<void(bool post)> post);
    void notify_posting_stale();

    // Observers (take the lock; for tests and --stats).
    std::uint8_t status() const;
    std::uint64_t driver_features() const;
    std::uint64_t offered_features() const;
    // Re-translates ring addresses after a guest memory slot swap.
    void remap_queues();
    // Runs `fn` with the device lock held (crossover link changes, a
    // vhost-user front-end's memory table swapped under the device).
    void run_locked(const std::function<void()>& fn) {
        std::lock_guard lock(mutex_);
        fn();
    }
    // Queue q, enabled but before DRIVER_OK, starts at avail/used index
    // `index` instead of 0: a vhost-user front-end's SET_VRING_BASE
    // (a ring that already ran, kept across a back-end restart).
    void start_queue_at(unsigned q, std::uint16_t index);
    // The transport's counters and their meanings (`xover counters`).
    static std::vector<net::CounterInfo> transport_counter_info() { return TransportCounters::info(); }

protected:
    struct Identity {
        std::uint16_t virtio_device_id = 0;  // PCI device = 0x1040 + this
        std::uint32_t class_code = 0;
        std::uint16_t subsystem = 0;
    };

    // `msix_vectors`: the MSI-X table's size; 0 = one per queue plus one
    // for configuration changes (a vhost-user session needs spares).
    VirtioPciDevice(const Identity& id, unsigned queues, std::uint16_t max_queue_size, vmm::GuestMemory& memory,
                    vmm::MsiController& msi, vmm::IrqLine& intx, unsigned msix_vectors = 0);

    // --- hooks for the device (called with mutex_ held) ---
    // Device-specific feature bits (the transport adds VERSION_1,
    // INDIRECT_DESC and EVENT_IDX).
    virtual std::uint64_t device_features() const = 0;
    virtual void read_device_config(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write_device_config(std::uint64_t /*offset*/, std::span<const std::uint8_t> /*data*/) {}
    // The driver notified a queue; only called while the device is live
    // (DRIVER_OK, queue enabled, no reset needed).
    virtual void queue_notified(unsigned queue) = 0;
    // The driver set DRIVER_OK: the device starts.
    virtual void activated() {}
    // The driver wrote status 0: drop all device state (queues are already reset).
    virtual void device_reset() {}

    // --- helpers for the device (call with mutex_ held) ---
    bool live() const;  // DRIVER_OK and not NEEDS_RESET
    bool negotiated(unsigned feature_bit) const { return driver_features_ >> feature_bit & 1; }
    Virtqueue& queue(unsigned q) { return queues_[q].ring; }
    bool queue_live(unsigned q) const { return live() && q < queues_.size() && queues_[q].ring.enabled(); }
    // Interrupts the driver for queue q if the ring asks for it.
    void maybe_interrupt(unsigned q);
    // Interrupts the driver for queue q (its vector, or ISR + INTx).
    void interrupt_queue(unsigned q);
    // The device configuration changed: bump config_generation, interrupt.
    void config_changed();
    // A malformed ring: set DEVICE_NEEDS_RESET, stop, tell the driver.
    void needs_reset(const char* why);
    void count_hostile() { ++transport_counters_.hostile; }
    void append_transport_counters(net::Counters& out) const { transport_counters_.append_to(out); }
    bool msix_in_use() const { return msix_.enabled(); }
    // Queue q's MSI-X vector (kNoVector: none).
    std::uint16_t queue_vector(unsigned q) const { return q < queues_.size() ? queues_[q].vector : kNoVector; }
    // A message for `vector` would be sent now (MSI-X on, neither the
    // function nor the vector masked).
    bool vector_deliverable(std::uint16_t vector) const {
        return msix_.enabled() && !msix_.function_masked() && vector < msix_.size() && !msix_.masked(vector);
    }
    // Queue q's interrupt would be a message to its vector now: the queue
    // is live and its vector deliverable. Whoever signals q from outside
    // this process (a crossover peer, a vhost-user back-end) may then use
    // the vector's irqfd; otherwise the transport must see the interrupt
    // (PBA, INTx).
    bool queue_message_deliverable(unsigned q) const { return queue_live(q) && vector_deliverable(queue_vector(q)); }
    // Interrupts raised outside this process (crossover peers): before the
    // driver reads the PBA or changes masking, the device moves what they
    // left pending into the MSI-X table; after masking, MSI-X enable or a
    // queue's vector may have changed, it republishes where they go.
    virtual void collect_external_interrupts() {}
    virtual void interrupt_routing_changed() {}
    vmm::GuestMemory& memory() { return memory_; }

    mutable std::mutex mutex_;

private:
    struct QueueState {
        Virtqueue ring;
        VirtqueueLayout layout;       // as programmed, applied at enable
        std::uint16_t vector = kNoVector;
    };

    // The BAR as the bus sees it; forwards to the device under its lock.
    class BarHandler : public vmm::IoDevice {
    public:
        explicit BarHandler(VirtioPciDevice& device) : device_(device) {}
        void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
        void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    private:
        VirtioPciDevice& device_;
    };

    void bar_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void bar_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void bar_read_locked(std::uint64_t offset, std::span<std::uint8_t> data, bool side_effects);
    void bar_write_locked(std::uint64_t offset, std::span<const std::uint8_t> data);
    void pci_cfg_access(std::uint32_t offset, std::uint32_t length);
    void common_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void common_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void common_write_field(std::uint64_t offset, unsigned width, std::uint32_t value);
    void write_status(std::uint8_t value);
    void enable_queue(unsigned q);
    void notify_locked(unsigned queue);
    void reset_locked();
    void signal_vector(std::uint16_t vector);
    void update_intx();
    void config_written(std::uint32_t offset, std::uint32_t length) override;
    void build_capabilities();

    vmm::GuestMemory& memory_;
    vmm::IrqLine& intx_;
    BarHandler bar_handler_;
    MsixTable msix_;
    std::uint8_t msix_cap_ = 0;
    std::uint8_t pci_cfg_cap_ = 0;
    std::uint16_t max_queue_size_;
    std::vector<QueueState> queues_;

    std::uint8_t status_ = 0;
    std::uint8_t isr_ = 0;
    std::uint8_t config_generation_ = 0;
    bool intx_level_ = false;
    std::uint32_t device_feature_select_ = 0;
    std::uint32_t driver_feature_select_ = 0;
    std::uint64_t driver_features_ = 0;
    std::uint16_t config_vector_ = kNoVector;
    std::uint16_t queue_select_ = 0;

    // The transport's counters, printed after the device's (net/counter_set.hpp).
#define XOVER_VIRTIO_TRANSPORT_COUNTERS(X, V)                                                     \
    X(notifies, "queue notifies from the driver (doorbell writes or ioeventfd)")                 \
    X(interrupts, "interrupts sent to the driver (queue and configuration)")                     \
    X(interrupts_suppressed, "queue interrupts the driver did not want (event index or flags)")  \
    X(needs_reset, "times the device set DEVICE_NEEDS_RESET (a broken ring or queue setup)")     \
    X(hostile, "driver actions no correct driver takes (counted and survived)")                   \
    X(bad_register_accesses, "common configuration writes of the wrong width (ignored)")      \
    X(notify_posting_started, "times RX notifies began to be posted (the driver flushes them)") \
    X(notify_posting_stale, "times a posted notify waited for a flush that did not come")
    void learn_notify_flush(std::uint64_t offset, bool write);
    // Whether the refill queue's notifies are posted (set_notify_posting).
    vmm::FlushedDoorbell notify_flush_;
    unsigned posted_queue_ = 0;
    std::function<void(bool)> notify_posting_;
    struct TransportCounters {
        XOVER_COUNTER_SET(XOVER_VIRTIO_TRANSPORT_COUNTERS, "", std::uint64_t)
    } transport_counters_;
};

}  // namespace xover::virtio_net
