// virtio-net (virtio 1.2 §5.1) on the modern PCI transport: one receive
// queue (0) and one transmit queue (1), the 12-byte virtio_net_hdr_v1 on
// every frame, mergeable receive buffers, transmit checksum offload, event
// index and indirect descriptors. No segmentation offloads are offered, so
// the guest never hands over a frame larger than its MTU.
//
// Wiring (see VirtioPciDevice for BAR layout and notify addresses):
//   backend.start(loop, net, [&net] { net.resume_tx(); });
//   on backend link changes: net.link_changed();
// The backend delivers received frames through deliver(); when the guest
// has no RX buffer it returns false and calls backend.rx_space_available()
// once the guest adds some.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "xover/nic/nic_port.hpp"
#include "xover/net/backend.hpp"
#include "xover/net/mac_address.hpp"
#include "xover/virtio_net/rx_placement.hpp"
#include "xover/virtio_net/virtio_pci_device.hpp"
#include "xover/virtio_net/virtqueue.hpp"

namespace xover::virtio_net {

class VirtioNet : public VirtioPciDevice, public net::FrameReceiver {
public:
    static constexpr unsigned kRxQueue = 0;
    static constexpr unsigned kTxQueue = 1;
    static constexpr unsigned kQueueCount = 2;
    static constexpr std::uint16_t kQueueSize = 256;
    static constexpr std::size_t kHeaderSize = 12;  // struct virtio_net_hdr_v1
    // Largest frame accepted from the guest: with no TSO/UFO offered a
    // driver sends MTU-sized frames, but the MTU is the guest's choice.
    static constexpr std::size_t kMaxFrame = 65535;
    // The device's features (MAC, STATUS, MRG_RXBUF, CSUM, GUEST_CSUM),
    // and all it offers with the transport's.
    static constexpr std::uint64_t kDeviceFeatures =
        (1ull << spec::net::kFeatureMac) | (1ull << spec::net::kFeatureStatus) |
        (1ull << spec::net::kFeatureMrgRxbuf) | (1ull << spec::net::kFeatureCsum) |
        (1ull << spec::net::kFeatureGuestCsum);
    static constexpr std::uint64_t kOfferedFeatures = kTransportFeatures | kDeviceFeatures;
    // Bytes [offset, offset + data.size()) of struct virtio_net_config
    // (MAC, link status, one queue pair) for a NIC with `mac` whose link is
    // `link_up`: what every virtio-net transport of xover's answers.
    static void net_config(const net::MacAddress& mac, bool link_up, std::uint64_t offset, std::span<std::uint8_t> data);

    // `msix_vectors`: see VirtioPciDevice (0: one per queue + config).
    VirtioNet(vmm::GuestMemory& memory, vmm::MsiController& msi, vmm::IrqLine& intx, net::Backend& backend,
              const net::MacAddress& mac, unsigned msix_vectors = 0);

    // net::FrameReceiver: writes one frame into the guest's RX queue.
    bool deliver(std::span<const std::uint8_t> frame) override;
    // The backend can take frames again after answering Busy.
    void resume_tx();
    // A crossover peer held the RX queue when the backend delivered: the
    // backend kept its frame and gets it in now.
    void retry_rx();
    // backend.link_up() may have changed: update status, interrupt.
    void link_changed();
    void link_state_changed() override { link_changed(); }

    // The device's counters, the transport's, then its port's
    // (CrossoverPort::counter_info()).
    net::Counters counters() const;
    static std::vector<net::CounterInfo> counter_info();
    const net::MacAddress& mac() const { return mac_; }

    // Crossover (before the guest runs): the RX queue's layout and
    // device-side position are published in the port's shared page, so
    // peers in other processes can fill it; every transmitted frame goes
    // through port.send(). The port outlives the device.
    //
    // Peers interrupt this device's RX queue as the route published in
    // the shared page says (nic/peer_interrupt.hpp): while the RX
    // queue uses MSI-X vector kCrossoverRxVector (Linux does: config 0,
    // RX 1, TX 2) and it is unmasked, by writing that vector's eventfd
    // directly (no exit, no wake-up of this process); while it is masked,
    // by leaving a pending bit this device shows in the PBA and delivers
    // on unmask; with INTx or another vector, by ringing our doorbell so
    // that doorbell_rang() raises the interrupt here. The TX queue the
    // same, with kCrossoverTxVector, for TX work a peer's process
    // completed (TX handoff, window loans).
    static constexpr unsigned kCrossoverRxVector = 1;
    static constexpr unsigned kCrossoverTxVector = 2;
    void attach_crossover(nic::NicPort& port);
    // The port's doorbell rang: a peer returned RX space (resume TX) or
    // left an RX interrupt for us to deliver.
    void doorbell_rang();

protected:
    // Every transmitted frame goes through here: the backend, or the
    // crossover port, which may park it (Deferred: chain `head` is then
    // completed by whoever moves it). Called with the device lock held.
    net::Backend::SendResult send_frame(std::span<const std::uint8_t> frame, std::uint16_t head);

private:
    // Parked: a crossover peer completes the chain later (TX handoff).
    enum class TxOutcome { Done, Busy, Parked };
    enum class RxOutcome { Delivered, Dropped, Starved, Broken };

    std::uint64_t device_features() const override;
    void read_device_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void queue_notified(unsigned queue) override;
    void activated() override;
    void resume_rx_from_producers();
    void device_reset() override;
    void collect_external_interrupts() override;
    void interrupt_routing_changed() override;

    void process_tx();
    TxOutcome transmit_chain(const DescriptorChain& chain);
    // tx_window.cpp: window mode (zero copy) through the crossover port.
    enum class WindowTx { NotApplicable, Lent, Busy };
    WindowTx try_window(const DescriptorChain& chain);
    void complete_window_heads();
    void forget_window_heads();
    void complete_tx_heads(std::span<const std::uint16_t> heads);
    void complete_waiting_tx_heads();
    RxOutcome fill_rx(std::span<const std::uint8_t> frame);
    bool deliver_locked(std::span<const std::uint8_t> frame);
    void drop_tx(std::uint64_t& counter, const char* why);
    bool carrier() const { return port_ ? port_->carrier() : backend_.link_up(); }
    void publish_rx_config();
    void rx_space_returned();
    void publish_tx_queue();
    // The route of queue q's interrupt for peers, and its state in our page.
    nic::PeerInterrupt::Route peer_irq_route(unsigned q) const;
    nic::PeerInterrupt& peer_interrupt(unsigned q) const;
    void deliver_peer_interrupt(unsigned q);

    net::Backend& backend_;
    bool rx_retry_pending_ = false;  // deliver() found the queue locked: retry_rx() is due
    nic::OwnerRxChanges rx_changes_;  // ring/position/enable changes for producers (retry_rx() settles a posted one)
    net::MacAddress mac_;
    bool link_up_ = true;
    bool tx_stalled_ = false;  // backend said Busy; wait for resume_tx()
    // As published, per queue (kRxQueue, kTxQueue).
    std::array<nic::PeerInterrupt::Route, 2> peer_route_{nic::PeerInterrupt::Off, nic::PeerInterrupt::Off};

    nic::NicPort* port_ = nullptr;           // set: crossover configured
    nic::SharedNicState* shared_ = nullptr;  // port_->shared()

    std::vector<std::uint16_t> tx_heads_waiting_;  // completions put off: a window peer writes our used ring

    DescriptorChain tx_chain_;
    RxPlacer rx_placer_;
    std::vector<std::uint8_t> tx_buffer_;

    // The device's counters (`stats: nicN`; net/counter_set.hpp), in printed order.
#define XOVER_VIRTIO_NET_COUNTERS(X, V)                                                              \
    X(tx_frames, "frames the guest sent that the backend or crossover took (parked ones included)")  \
    X(tx_bytes, "bytes of tx_frames (no virtio_net_hdr)")                                            \
    X(tx_busy, "sends the backend or crossover answered Busy (the chain waits)")                      \
    X(tx_dropped_backend, "frames the backend or crossover dropped")                                  \
    V(rx_frames, "frames placed in the guest's RX queue: from the backend and from crossover peers (xover_rx_frames)") \
    V(rx_bytes, "bytes of rx_frames (no virtio_net_hdr)")                                            \
    X(rx_no_buffer, "deliveries refused: the RX queue had no free buffer")                            \
    X(rx_queue_locked, "deliveries put off: a crossover peer held the RX queue (retried in 1 ms)")    \
    X(rx_not_ready, "deliveries refused: the RX queue is not live yet")                               \
    X(rx_oversize, "RX frames larger than the guest's buffers can take (dropped)")                    \
    X(tx_write_only, "TX chains with a device-writable descriptor (dropped)")                         \
    X(tx_too_short, "TX chains shorter than virtio_net_hdr + an Ethernet header (dropped)")          \
    X(tx_oversize, "TX frames larger than 64 KiB (dropped)")                                          \
    X(tx_gso, "TX frames asking for segmentation offload, which is not offered (dropped)")           \
    X(tx_bad_csum, "TX frames whose csum_start/csum_offset lie outside the frame (dropped)")          \
    X(tx_csum_not_negotiated, "TX frames asking for a checksum without VIRTIO_NET_F_CSUM (sent as is)") \
    X(rx_bad_buffer, "RX chains with no room for virtio_net_hdr (returned unused)")                    \
    X(rx_bad_peer_position, "RX positions in the shared page no producer could have reached (ignored)") \
    X(rx_peer_interrupts, "crossover RX interrupts this process raised for peers' frames")            \
    X(tx_peer_interrupts, "crossover TX interrupts this process raised for TX work peers completed") \
    X(tx_window_frames, "frames sent in window mode (no copy: the peer reads our TX buffer)")         \
    X(tx_window_completed, "window-mode TX chains completed (the peer returned the buffer)")          \
    X(tx_completions_put_off, "TX chains completed later: a window peer was writing the used ring")  \
    X(tx_window_head_reused, "TX heads the guest reused while still lent in window mode")             \
    X(tx_parked, "chains parked for a crossover peer to move and complete (TX handoff)")
    struct Stats {
        XOVER_COUNTER_SET(XOVER_VIRTIO_NET_COUNTERS, "", std::uint64_t)
        nic::RxTally backend_rx;  // not printed: the backend's part of rx_frames
    } stats_;
};

}  // namespace xover::virtio_net
