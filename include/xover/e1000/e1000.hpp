// Intel 82540EM (8086:100E) Gigabit Ethernet controller model, faithful to
// the 8254x Software Developer's Manual so that unmodified drivers (Linux
// e1000, iPXE, the tiny test kernels) run on it.
//
// BAR0: 128 KiB of memory-mapped registers. BAR1: 64 bytes of I/O space
// with the IOADDR (0x0) / IODATA (0x4) window onto the same registers.
// INTA#, level-triggered: the line is high while (ICR & IMS) != 0, subject
// to the interrupt throttling interval (ITR) and the receive/transmit
// interrupt delays (RDTR/RADV, TIDV/TADV).
//
// Threads: one mutex guards all state. Register accesses (vCPU threads),
// deliver() and resume_tx() (I/O thread) and on_timer() take it. Transmit
// runs in the thread that wrote TDT; backend.send() is called with the lock
// held (see net/backend.hpp for what a backend may not do from there).
//
// Files: registers.cpp (register file, MMIO/IO dispatch, statistics),
// interrupts.cpp (ICR/IMS, ITR and delay timers), tx_ring.cpp (descriptors,
// offloads, TSO), rx_ring.cpp (filtering, descriptors), eeprom.cpp, phy.cpp.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "xover/nic/nic_port.hpp"
#include "xover/e1000/eeprom.hpp"
#include "xover/e1000/phy.hpp"
#include "xover/e1000/registers.hpp"
#include "xover/net/backend.hpp"
#include "xover/net/mac_address.hpp"
#include "xover/nic/tx_view.hpp"
#include "xover/vmm/flushed_doorbell.hpp"
#include "xover/vmm/guest_memory.hpp"
#include "xover/vmm/interrupts.hpp"
#include "xover/vmm/io_device.hpp"
#include "xover/vmm/pci_device.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::e1000 {

// The receive ring as the guest programmed it: what a crossover peer needs
// to place frames in this NIC's buffers from another process.
struct RxRingState {
    std::uint64_t base = 0;          // guest-physical address of descriptor 0
    std::uint32_t descriptors = 0;   // ring size (0: not set up)
    std::uint32_t head = 0;          // RDH: next descriptor the NIC fills
    std::uint32_t tail = 0;          // RDT: first descriptor the NIC may not use
    std::uint32_t buffer_size = 0;   // bytes per receive buffer (RCTL.BSIZE/BSEX)
    bool enabled = false;            // RCTL.EN
    bool strip_crc = false;          // RCTL.SECRC: otherwise 4 FCS bytes follow each frame
};

// Deferred interrupts (ITR throttling, RDTR/RADV, TIDV/TADV) need a clock
// and a one-shot timer. `arm(deadline)` asks the owner to call on_timer()
// once the clock reaches `deadline` (in now_ns() units); a new call replaces
// the previous deadline, and an early or extra on_timer() call is harmless.
// arm() runs with the device lock held and must not call back into it.
// Without an arm function every delay counts as zero (interrupts are never
// held back), which keeps a machine without timers correct.
struct InterruptTimer {
    std::function<std::uint64_t()> now_ns;
    std::function<void(std::uint64_t deadline_ns)> arm;
};

class E1000 : public vmm::PciDevice, public net::FrameReceiver {
public:
    static constexpr vmm::PciIds kPciIds{
        .vendor = 0x8086, .device = 0x100E, .class_code = 0x020000, .revision = 0x03,
        .subsystem_vendor = 0x8086, .subsystem = 0x001E};
    static constexpr unsigned kMmioBar = 0;
    static constexpr unsigned kIoBar = 1;
    // Largest frame the transmit path assembles: a 64 KiB TSO payload plus
    // headers. Longer descriptor chains are dropped and counted.
    static constexpr std::size_t kMaxTxFrame = 0x10000 + 256;

    E1000(vmm::GuestMemory& memory, vmm::IrqLine& irq, net::Backend& backend, const net::MacAddress& mac,
          std::string name);
    ~E1000() override;

    // Receives one frame from the backend (FrameReceiver). False: no free
    // receive descriptor (the guest has not returned buffers yet).
    bool deliver(std::span<const std::uint8_t> frame) override;
    // The backend can take frames again after answering Busy.
    void resume_tx();
    // A crossover peer held the RX ring when the backend delivered: the
    // backend kept its frame and gets it in now.
    void retry_rx();
    // The backend's link state changed: updates STATUS.LU / the PHY and
    // raises ICR.LSC.
    void link_changed();
    void link_state_changed() override { link_changed(); }

    void set_interrupt_timer(InterruptTimer timer);
    void on_timer();
    // The crossover port's doorbell rang: delivers RXT0 for frames peers
    // placed (with RDTR/RADV/ITR), then resumes transmit.
    void doorbell_rang();

    // Crossover (before the guest runs): RDH, ICR and IMS move into the
    // port's shared page so that peers in other processes can fill this
    // NIC's RX ring and raise its causes; every transmitted frame goes
    // through port.send(). The port outlives the device.
    void attach_crossover(nic::NicPort& port);
    // Runs `fn` with the device lock held (crossover link changes).
    void run_locked(const std::function<void()>& fn) {
        std::lock_guard lock(mutex_);
        fn();
    }

    // The NIC's counters, then its port's (CrossoverPort::counter_info()).
    net::Counters counters() const override;
    static std::vector<net::CounterInfo> counter_info() { return HostCounters::info(); }
    RxRingState rx_ring_state() const;
    bool irq_level() const;
    const std::string& name() const { return name_; }
    const Eeprom& eeprom() const { return eeprom_; }

    // RDT posting (vmm/posted_writes.hpp): once the driver is seen to
    // flush its RDT writes (vmm/flushed_doorbell.hpp), `post(true)` runs,
    // with the device lock held; `post(false)` when the device resets. The
    // owner reports a posted RDT that went stale with rdt_posting_stale().
    void set_rdt_posting(std::function<void(bool post)> post);
    void rdt_posting_stale();

    // Register access by offset (what BAR0 decodes), also for tests.
    std::uint32_t read_register(std::uint32_t offset);
    void write_register(std::uint32_t offset, std::uint32_t value);

protected:
    void config_written(std::uint32_t offset, std::uint32_t length) override;

private:
    // BAR handlers forward to the device (one IoDevice per BAR).
    class MmioBar : public vmm::IoDevice {
    public:
        explicit MmioBar(E1000& nic) : nic_(nic) {}
        void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
        void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;
    private:
        E1000& nic_;
    };
    class IoBar : public vmm::IoDevice {
    public:
        explicit IoBar(E1000& nic) : nic_(nic) {}
        void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
        void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;
    private:
        E1000& nic_;
    };

    // Legacy / extended transmit descriptor, decoded.
    struct TxDescriptor {
        std::uint64_t address;
        std::uint32_t length;
        std::uint8_t cmd;
        std::uint8_t dtyp;
        std::uint8_t cso;     // legacy
        std::uint8_t css;     // legacy
        std::uint8_t popts;   // data descriptor
        std::uint16_t special;
        bool extended;
    };
    // The offload context from the last context descriptor.
    struct TxContext {
        std::uint8_t ipcss = 0, ipcso = 0;
        std::uint16_t ipcse = 0;
        std::uint8_t tucss = 0, tucso = 0;
        std::uint16_t tucse = 0;
        std::uint32_t paylen = 0;
        std::uint8_t tucmd = 0;
        std::uint8_t hdrlen = 0;
        std::uint16_t mss = 0;
    };
    // What the frame being assembled asked for.
    struct TxFrameState {
        std::size_t length = 0;
        bool started = false;
        bool broken = false;        // bad address or oversize: drop at EOP
        bool extended = false;
        bool tse = false;
        std::uint8_t popts = 0;
        bool legacy_ic = false;
        std::uint8_t legacy_cso = 0, legacy_css = 0;
        bool vlan = false;
        std::uint16_t vlan_tag = 0;
    };
    // A frame (or TSO segment) the backend refused with Busy.
    struct TxPending {
        bool active = false;
        bool segment = false;           // the bytes are in tx_segment_
        std::size_t length = 0;
        std::uint32_t next_segment = 0; // TSO: first segment not yet sent
        std::uint32_t segments = 0;
        std::uint8_t eop_cmd = 0;       // EOP descriptor's command (RS, IDE)
    };
    // The NIC's counters (`stats: nicN`; net/counter_set.hpp), in printed order.
#define XOVER_E1000_COUNTERS(X, V)                                                                   \
    X(tx_frames, "frames the guest sent that the backend or crossover took (parked ones included)")  \
    X(tx_bytes, "bytes of tx_frames (no FCS)")                                                        \
    V(rx_frames, "frames placed in the guest's RX ring: from the backend and from crossover peers (xover_rx_frames)") \
    V(rx_bytes, "bytes of rx_frames (no FCS)")                                                        \
    X(rx_dropped_no_buffer, "frames dropped: the RX ring had no free buffer")                         \
    X(rx_ring_locked, "deliveries put off: a crossover peer held the RX ring (retried in 1 ms)")      \
    X(rx_filtered, "frames the receive filter rejected (address or VLAN)")                            \
    X(rx_dropped_disabled, "frames dropped: receive not enabled (RCTL.EN clear)")                     \
    X(rx_window_conflict, "backend frames dropped: their RX buffer is shared with the window peer")  \
    X(tx_busy, "sends the backend or crossover answered Busy (the frame waits)")                      \
    X(tx_dropped_backend, "frames the backend or crossover dropped")                                  \
    X(tx_tso_segments, "TSO segments built from the guest's large sends")                             \
    X(mmio_reads, "register reads (BAR0 or I/O BAR)")                                                 \
    X(mmio_writes, "register writes (BAR0 or I/O BAR)")                                               \
    X(tdt_writes, "TDT writes (the guest's TX doorbell)")                                             \
    X(interrupts, "interrupts raised to the guest")                                                   \
    X(tx_bad_address, "TX descriptors or buffers outside guest memory")                               \
    X(rx_bad_address, "RX descriptors or buffers outside guest memory")                               \
    X(tx_oversize, "TX frames longer than the largest the NIC sends (dropped)")                       \
    X(rx_oversize, "RX frames too long for the guest's setup or ring (dropped)")                      \
    X(tx_malformed, "TX frames with a bad descriptor type or shorter than an Ethernet header")        \
    X(rx_malformed, "RX frames shorter than an Ethernet header (dropped)")                            \
    X(tx_bad_ring, "TX walks skipped: TDH or TDT beyond the ring")                                    \
    X(rx_bad_ring, "RX frames dropped: RDH or RDT beyond the ring")                                   \
    X(tx_bad_offload, "TX frames whose checksum or TSO context does not fit the frame")               \
    X(dma_without_bus_master, "ring accesses refused: PCI bus mastering is off")                      \
    X(tx_window_frames, "frames sent in window mode (no copy: the peer reads our TX buffer)")         \
    X(tx_window_completed, "window-mode TX slots completed by this process")                          \
    X(tx_parked, "frames parked for a crossover peer to move and complete (TX handoff)")              \
    X(rx_peer_moderated, "RX interrupts crossover peers left to our moderation timers")               \
    X(rdt_posting_started, "times RDT writes began to be posted (the driver flushes them)")           \
    X(rdt_posting_stale, "times a posted RDT write waited for a flush that did not come")
    struct HostCounters {
        XOVER_COUNTER_SET(XOVER_E1000_COUNTERS, "", std::uint64_t)
        nic::RxTally backend_rx;  // not printed: the backend's part of rx_frames
    };

    // registers.cpp
    std::uint32_t read_locked(std::uint32_t offset);
    void write_locked(std::uint32_t offset, std::uint32_t value);
    void reset_locked();
    std::uint32_t read_statistic(std::uint32_t offset);
    void stat_add(std::uint32_t offset, std::uint64_t n = 1);
    void stat_add_octets(std::uint32_t low_offset, std::uint64_t n);
    void count_size_bin(std::uint32_t first_bin, std::size_t length_with_fcs);
    std::uint32_t eecd_value() const;
    void write_eecd(std::uint32_t value);
    void write_eerd(std::uint32_t value);
    void write_mdic(std::uint32_t value);
    void learn_rdt_flush(std::uint32_t offset, bool write);
    std::uint32_t& r(std::uint32_t offset) { return regs_[offset / 4]; }
    std::uint32_t r(std::uint32_t offset) const { return regs_[offset / 4]; }

    // interrupts.cpp
    void raise(std::uint32_t causes);
    void update_irq();
    void signal_tx_written_back(bool delayed);
    void signal_rx_frame();
    void schedule(std::uint64_t& slot, std::uint64_t deadline);
    void arm_timer();
    std::uint64_t now();
    bool timers_enabled() const { return bool(timer_.arm); }

    // tx_ring.cpp
    void process_tx();  // walks the ring, then ends the crossover batch
    void process_tx_ring();
    bool finish_frame(std::uint8_t eop_cmd);                           // false: backend busy
    bool send_tso(std::uint32_t first_segment, std::uint8_t eop_cmd);  // false: backend busy
    bool send_prepared(bool segment, std::size_t length);
    net::Backend::SendResult send_frame(std::span<const std::uint8_t> frame);
    void insert_checksum(std::span<std::uint8_t> frame, std::size_t length, std::size_t start, std::size_t end,
                         std::size_t at, std::uint32_t extra, bool udp);
    std::size_t finalize_frame(std::span<std::uint8_t> buffer, std::size_t length);
    void complete_tx_descriptor(std::uint32_t index, std::uint8_t cmd);
    void account_tx(std::span<const std::uint8_t> frame, net::Backend::SendResult result);
    bool try_window(std::uint32_t index, std::uint64_t address, std::uint32_t length, std::uint8_t cmd,
                    bool& busy);
    void complete_window_slots();
    void forget_window_slots();
    bool peer_may_complete_tx() const;
    void reclaim_handoff();
    void take_handoff_tx_interrupt();
    void reset_tx_frame();
    std::uint32_t tx_ring_size() const;

    // crossover.cpp: where the shared registers live
    std::uint32_t icr_value() const;
    void or_icr(std::uint32_t causes);
    std::uint32_t take_icr();
    void clear_icr(std::uint32_t causes);
    void set_ims_value(std::uint32_t value);
    std::uint32_t rdh() const;
    void set_rdh(std::uint32_t value);
    void publish_rx_config();
    void publish_rx_filter();
    void publish_filter_word(std::uint32_t offset);
    void publish_irq_moderation();
    void rx_space_returned();
    void publish_tx_queue();
    void tx_ring_moved();
    bool carrier() const;

    // rx_ring.cpp
    bool deliver_locked(std::span<const std::uint8_t> frame);
    std::uint32_t rx_ring_size() const;
    std::uint32_t rx_buffer_size() const;

    vmm::GuestMemory& memory_;
    vmm::IrqLine& irq_;
    nic::NicPort* port_ = nullptr;           // set: crossover configured
    nic::SharedNicState* shared_ = nullptr;  // port_->shared()
    net::Backend& backend_;
    bool rx_retry_pending_ = false;  // deliver() found the ring locked: retry_rx() is due
    nic::OwnerRxChanges rx_changes_;  // ring/RDH/enable changes for producers (retry_rx() settles a posted one)
    std::string name_;
    Eeprom eeprom_;
    Phy phy_;
    MmioBar mmio_bar_{*this};
    IoBar io_bar_{*this};

    mutable std::mutex mutex_;
    std::vector<std::uint32_t> regs_;   // register file, indexed by offset / 4
    std::array<std::uint64_t, 64> stats_{};  // 0x4000.. read-to-clear counters
    std::uint32_t icr_ = 0;
    std::uint32_t ims_ = 0;
    std::uint32_t io_address_ = 0;
    bool link_up_ = true;
    bool level_ = false;
    bool bus_master_ = false;
    bool intx_disabled_ = false;

    // Interrupt timing (0 = not pending).
    InterruptTimer timer_;
    bool raised_before_ = false;
    std::uint64_t last_raise_ns_ = 0;
    std::uint64_t itr_deadline_ = 0;
    std::uint64_t tx_delay_deadline_ = 0, tx_abs_deadline_ = 0;
    std::uint64_t rx_delay_deadline_ = 0, rx_abs_deadline_ = 0;
    std::uint64_t armed_deadline_ = 0;

    // Transmit state; buffers are allocated once, never per frame.
    TxContext tx_context_;
    TxFrameState tx_frame_;
    TxPending tx_pending_;
    // The completion token of the frame being sent (nic/tx_view.hpp:
    // EOP index | command << 16; kNoTxToken for a TSO segment but the
    // last), and whether the port parked it (then its completion is the
    // mover's, not ours).
    static constexpr std::uint32_t kNoTxToken = ~0u;
    std::uint32_t tx_token_ = kNoTxToken;
    bool tx_deferred_ = false;
    std::vector<std::uint8_t> tx_buffer_;
    std::vector<std::uint8_t> tx_segment_;

    // Whether RDT writes are posted (set_rdt_posting).
    vmm::FlushedDoorbell rdt_flush_;
    std::function<void(bool)> rdt_posting_;

    HostCounters counters_;
    vmm::RateLimitedLog log_;
};

}  // namespace xover::e1000
