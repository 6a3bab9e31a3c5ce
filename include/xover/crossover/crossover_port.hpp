// CrossoverPort: the crossover engine of one NIC, in its VM's process. The
// NIC model sees it as a NicPort (every transmitted frame goes through
// send()); the VM agent adds and removes links as the broker says.
//
// Transmit path (copy mode), per frame, no syscall, no allocation:
//   classify by destination MAC (PeerTable) →
//     peer:    the peer model's RX view copies it into the peer's RX ring
//              (under the peer's producer lock, held for the batch)
//     group:   the backend, then every peer (best effort)
//     unknown: the backend (and, rate-limited, a FrameSeen to the broker)
// A frame the peer's receive filter rejects (its RCTL/RAL/MTA/VFTA, see
// nic::RxView::accepts) is dropped and counted, as the peer's NIC would.
// end_batch() publishes each touched peer's RX position and interrupts each
// peer at most once (an e1000 peer's irqfd if IMS allows, or its doorbell
// when it moderates RXT0 with RDTR/RADV/ITR; a virtio-net peer as its
// MSI-X/INTx route says, see peer_interrupt.hpp). A full peer
// ring keeps the frame pending (Busy), sets the peer's producer_waiting, and the peer rings our
// doorbell when its guest returns buffers: the model's resume_tx() runs.
//
// Threads: everything runs under the owning NIC's device lock (the model
// calls send/end_batch/rx_space_returned with it held; the agent uses the
// model's run_locked() for add_link/remove_link).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xover/crossover/detector.hpp"
#include "xover/crossover/dma_window.hpp"
#include "xover/crossover/model_views.hpp"
#include "xover/crossover/peer_window_memory.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/kvm/event_fd.hpp"
#include "xover/net/backend.hpp"
#include "xover/nic/nic_port.hpp"
#include "xover/nic/rx_view.hpp"
#include "xover/nic/slow_path_arrivals.hpp"
#include "xover/nic/tx_view.hpp"

namespace xover::crossover {

class CrossoverPort final : public nic::NicPort {
public:
    // `model`: the NIC's own (its views; its id goes into the state page).
    // `backend_is_none`: the NIC has no physical path, so its carrier is
    // "some link is up". Throws xover::Error (memfd/eventfd creation).
    CrossoverPort(std::string name, nic::ModelId model, net::Backend& backend, bool backend_is_none);
    ~CrossoverPort() override;

    // --- NicPort (device lock held) ---
    nic::SharedNicState& shared() override { return page_.state(); }
    net::Backend::SendResult send(std::span<const std::uint8_t> frame) override;
    net::Backend::SendResult send_completable(std::span<const std::uint8_t> frame, std::uint32_t token) override;
    void end_batch() override;
    OwnRx rx_space_returned() override;
    void retry_later(std::chrono::milliseconds delay) override {
        if (retry_) retry_(delay);
    }
    // --- TX handoff (crossover_port_handoff.cpp, tx_handoff.hpp) ---
    void publish_tx_queue(nic::TxQueueKind kind, std::uint32_t entries, std::uint64_t ring, std::uint64_t avail,
                          std::uint64_t used, std::uint32_t flags, std::uint32_t irq_interval_ns) override;
    void note_interrupt(std::uint64_t now_ns) override {
        handoff().last_irq_ns.store(now_ns, std::memory_order_relaxed);
    }
    std::uint64_t last_interrupt_ns() const override {
        return handoff().last_irq_ns.load(std::memory_order_relaxed);
    }
    bool reclaim_tx(std::uint32_t& completion_pos) override;
    bool tx_parking() const override;
    void set_tx_completion_pos(std::uint32_t used) override;
    bool park_completion(std::uint32_t token) override;
    void abandon_tx() override;
    bool take_tx_interrupt() override;
    bool carrier() const override;
    void append_counters(net::Counters& out) const override;
    nic::RxTally crossover_rx() const override;
    static std::vector<net::CounterInfo> counter_info();
    WindowSend send_in_window(std::uint32_t tx_index, std::uint64_t buffer_gpa, std::uint32_t frame_offset,
                              std::span<const std::uint8_t> frame) override;
    std::uint64_t window_link_id() const override { return window_peer_ ? window_link_ : 0; }
    bool shared_with_window_peer(std::uint64_t gpa, std::uint64_t length) const override;
    nic::TxView::WindowCompletion complete_window_tx() override;
    bool window_holds(std::uint16_t head) const override;
    void window_forget() override;
    TxCompletion begin_tx_completion(std::uint32_t& used) override;
    void end_tx_completion(std::uint32_t used) override;

    // --- window mode (crossover_port_window.cpp; device lock held) ---
    // This NIC's DMA window (set once, before the guest runs; may stay null).
    void set_window(DmaWindow* window) { window_ = window; }
    DmaWindow* window() const { return window_; }
    // The link whose shared elements the window's halves are mapped onto
    // (0: none). Frames to that peer are placed in place when they can be.
    void set_window_link(std::uint64_t link_id);
    std::uint64_t window_link() const { return window_link_; }
    // Nothing was ever placed in our RX ring: no frame our guest may still
    // read lies in the RX half (published as window_rx_fresh at RX attach).
    bool rx_fresh() const;
    // Whether our TX half may go onto the window link's element, which the
    // peer maps as its RX half: only if both rings are fresh (nothing ever
    // sent by our guest, nothing ever placed in the peer's ring, which the
    // peer said at its RX attach and its position still says), so TX slot
    // k and its RX buffer k start in step and each is held by one guest at
    // a time. nullopt: not yet known (the peer has not mapped our element,
    // or its ring is locked for a moment); frames to the peer wait until
    // window_tx_settled(). Called on the I/O thread: once to see whether
    // it is known yet, then again with the vCPUs paused to act on it.
    std::optional<bool> window_tx_may_share();
    // Lock-free: the I/O thread asks it before taking the device lock.
    bool window_tx_pending() const { return window_tx_pending_.load(std::memory_order_relaxed); }
    // Our TX half is on the element but the rings fell out of step: it is
    // pending again, to be taken off (window_tx_may_share() says false).
    bool window_tx_leaving() const { return window_tx_leaving_; }
    void window_tx_settled(bool shared);
    // Takes our TX half off the element (copying its slots back) and
    // settles the link as copying. Running: from the exit of our guest's
    // own TX reset, no vCPU paused (DmaWindow::detach_running); Paused: on
    // the I/O thread with every vCPU parked (settle_window_tx).
    enum class Remap { Running, Paused };
    void take_tx_half_off(Remap how);

    // --- links (device lock held) ---
    // False (link ignored, logged) for an unknown peer model or a full table.
    bool add_link(std::shared_ptr<PeerLink> link);
    // The removed link (drop it outside the lock: that unmaps the peer).
    std::shared_ptr<PeerLink> remove_link(std::uint64_t link_id);
    std::size_t link_count() const { return table_.peers().size(); }

    // Auto wiring: called (rate-limited per MAC) for unicast frames to
    // MACs with no link. Set before the guest runs.
    void set_frame_seen_reporter(std::function<void(const net::MacAddress&)> report) { report_ = std::move(report); }

    // Ordering across the switch from the slow path to a link (see
    // slow_path_arrivals.hpp). Set before the guest runs. `retry(delay)`
    // must make the model call resume_tx() after `delay` (a timer): send()
    // answered Busy while waiting for something no doorbell announces.
    void set_own_mac(const net::MacAddress& mac) { own_key_ = nic::mac_key(mac.bytes.data()); }
    void set_retry_scheduler(std::function<void(std::chrono::milliseconds)> retry) { retry_ = std::move(retry); }
    // How long a group frame waits for a peer's full ring before that peer
    // misses it: a guest that stopped receiving must not hold broadcasts to
    // everyone else for ever, and one that is only slow (a vCPU a loaded
    // host deschedules for a few hundred ms; the chaos soak on an emulated
    // host saw 200 ms) must not miss frames. Only the first frame of a stall
    // waits: the peer is then stalled (Peer::group_stalled) until it takes
    // a frame. Tests shorten it.
    static constexpr std::chrono::milliseconds kDefaultGroupPeerPatience{1000};
    void set_group_peer_patience(std::chrono::milliseconds patience) { group_peer_patience_ = patience; }
    // A frame from the backend was placed in our RX ring, or (placed false)
    // waits for RX buffers (the I/O thread, the only caller; no lock
    // needed: the arrivals table has one writer).
    void note_slow_delivery(std::span<const std::uint8_t> frame, bool placed);

    // The owning guest's memory (set before the guest runs): frames peers
    // parked for this NIC are moved into its RX ring from here.
    void set_own_memory(vmm::GuestMemory& memory) { own_memory_ = &memory; }
    // The doorbell woke this process (the VM's I/O thread counts it).
    void note_doorbell_wakeup() { ++c_.doorbell_wakeups; }

    // What the VM registers with the broker.
    const SharedStatePage& page() const { return page_; }
    const kvm::EventFd& doorbell() const { return doorbell_; }
    const std::string& name() const { return name_; }

private:
    struct Peer {
        std::shared_ptr<PeerLink> link;
        std::unique_ptr<nic::RxView> rx_view;  // places frames in the peer's RX ring (its model's view)
        nic::RxView::Begin begin = nic::RxView::Begin::NotReady;
        bool irq_pending = false;
        bool wake_pending = false;  // ring the peer's doorbell: it delivers RXT0 itself
        // Switching from the slow path: hold frames for this peer until
        // what we sent it over the backend has arrived (or stopped coming).
        bool draining = false;
        std::uint64_t drain_seen = 0;
        std::chrono::steady_clock::time_point drain_since{};
        std::uint64_t batch_frames = 0, batch_bytes = 0, batch_copies = 0;  // flushed into the peer's counter slot
        bool window_warned = false;  // one window complaint per link in the log
        bool reach_warned = false;   // warn_out_of_reach said it for this link
        std::chrono::steady_clock::time_point window_wait_since{};  // first frame that waited for its mapping
        // It missed a group frame after the whole patience and has taken
        // none since: later group frames skip it at once while its ring is
        // full, so a peer that stopped receiving costs the group one wait.
        bool group_stalled = false;
        std::unique_ptr<nic::TxView> tx_view;  // completes the peer's TX tokens (its model's view)
    };
    // Group: lossless for a peer whose ring is full, but a peer that has
    // not enabled receive is skipped (a broadcast never waits for it).
    enum class Mode { Lossless, BestEffort, Group };

    Peer* find(const PeerLink* link);
    net::Backend::SendResult send_frame(std::span<const std::uint8_t> frame);
    net::Backend::SendResult to_peer(Peer& peer, std::span<const std::uint8_t> frame, Mode mode);
    bool window_tx_unsettled(Peer& peer);
    WindowSend window_out_of_step();
    void leave_window_on_reset();
    net::Backend::SendResult to_backend(std::span<const std::uint8_t> frame);
    bool open(Peer& peer);
    bool begin_again(Peer& peer);
    void ask_for_room(Peer& peer, bool doorbell);
    vmm::GuestMemory& peer_memory(Peer& peer);
    std::uint64_t peer_rx_half(Peer& peer);
    bool awaiting_peer_window(Peer& peer);
    void warn_out_of_reach(Peer& peer);
    bool complete_window_peer_tx();
    // crossover_port_order.cpp: ordering across the path switch, and
    // group frames delivered to every peer exactly once.
    void start_drain(Peer& peer);
    bool drained(Peer& peer);
    net::Backend::SendResult send_group(std::span<const std::uint8_t> frame);
    void forget_group_peer(const Peer& peer);
    void close_open();
    void interrupt(Peer& peer);
    void count_sent(std::uint32_t length, bool copied);
    void count_placed(Peer& peer, std::uint32_t length, bool copied);
    // crossover_port_handoff.cpp
    nic::TxHandoff& handoff() const { return nic::tx_handoff(page_.state()); }
    bool may_park(const Peer& peer, std::span<const std::uint8_t> frame, Mode mode) const;
    bool start_run(Peer& peer);
    void park(std::span<const std::uint8_t> frame);
    net::Backend::SendResult send_during_run(std::span<const std::uint8_t> frame);
    struct Moved {
        std::uint32_t records = 0, delivered = 0, dropped = 0;
        std::uint64_t bytes = 0;
        bool tx_irq = false;  // the sender's guest wants a TX interrupt
    };
    Moved move_parked(nic::TxHandoff& h, nic::RxView& rx, nic::TxView& view, bool view_ok);
    void drain_own_run();
    OwnRx consume_parked();
    void complete_parked_locally();
    bool raise_peer_tx(Peer& peer, nic::TxIrq irq);
    void wake_waiting_producers();
    std::uint64_t slot_sum(std::atomic<std::uint64_t> nic::ProducerSlot::*counter) const;
    std::uint64_t window_completed_by_peer() const;

    std::string name_;
    net::Backend& backend_;
    bool backend_is_none_;
    SharedStatePage page_;
    kvm::EventFd doorbell_;
    PeerTable table_;
    std::array<Peer, nic::kMaxProducerSlots> peers_{};
    Peer* open_ = nullptr;  // whose producer lock this batch holds
    std::function<void(const net::MacAddress&)> report_;
    std::uint64_t own_key_ = 0;
    nic::SlowPathTally tally_;
    std::function<void(std::chrono::milliseconds)> retry_;
    // A group frame some receivers already have (the model retries the same
    // frame after Busy): bit i = peers_[i], kGroupBackendDone = the backend.
    static constexpr std::uint32_t kGroupBackendDone = 1u << 31;
    std::uint32_t group_done_ = 0;
    bool group_any_ = false;
    std::uint64_t group_fingerprint_ = 0;
    std::chrono::milliseconds group_peer_patience_ = kDefaultGroupPeerPatience;
    std::chrono::steady_clock::time_point group_busy_since_{};
    // Printed after the port's (crossover_port_order.cpp).
#define XOVER_CROSSOVER_ORDER_COUNTERS(X, V)                                                        \
    X(drains, "new links that first waited for frames sent over the backend to arrive")            \
    X(drain_waits, "sends held back (Busy) while a new link drained")                              \
    X(drain_timeouts, "drains given up: frames sent over the backend never arrived")               \
    X(group_retries, "group frames retried: a peer's ring was full")                               \
    X(group_peer_timeouts, "group frames a peer missed: its ring stayed full past the patience")   \
    X(group_peer_stalled_skips, "group frames a stalled peer missed at once (full ring, no wait)")     \
    X(group_peer_not_ready, "group frames a peer missed: its RX ring was not set up")
    struct OrderCounters {
        XOVER_COUNTER_SET(XOVER_CROSSOVER_ORDER_COUNTERS, "xover_", std::uint64_t)
    } oc_;
    DmaWindow* window_ = nullptr;
    std::uint64_t window_link_ = 0;
    Peer* window_peer_ = nullptr;
    // The window link's TX half is not settled yet (window_tx_may_share).
    // Written under the device lock; read without it (window_tx_pending).
    std::atomic<bool> window_tx_pending_{false};
    bool window_tx_leaving_ = false;  // pending to leave the element (window_out_of_step)
    bool tx_taken_ = false;           // our guest has transmitted a frame (the TX ring is not fresh)
    std::atomic<bool> slow_rx_placed_{false};  // our backend placed a frame in our RX ring
    bool tx_completion_locked_ = false;  // begin_tx_completion took the handoff lock
    // A window peer's process may have written our TX used ring since we
    // last took its position from the handoff (begin_tx_completion).
    bool tx_used_shared_ = false;
    nic::TxQueueDescription tx_queue_;   // as last published, with the ring's generation
    bool run_abandoned_ = false;         // the guest replaced its TX ring while a mover held the run
    bool parked_orphaned_ = false;       // a run's peer went while moving: complete_parked_locally is due
    PeerWindowMemory window_memory_;
    // TX handoff: this model's views over its own memory and page.
    static constexpr std::uint32_t kNoToken = ~0u;
    std::uint32_t token_ = kNoToken;  // the frame send_completable() is sending
    bool has_token_ = false;
    bool own_tx_irq_ = false;  // we completed our own parked frames: the model raises TXDW/its TX vector
    vmm::GuestMemory* own_memory_ = nullptr;
    std::unique_ptr<nic::TxView> own_tx_view_;
    std::unique_ptr<nic::RxView> own_rx_view_;
    std::vector<std::uint8_t> scratch_;  // a parked frame, copied out of the sender's slot before use

    // The port's counters, printed "xover_" + name after the model's
    // (net/counter_set.hpp). V: read when printed, from elsewhere.
#define XOVER_CROSSOVER_PORT_COUNTERS(X, V)                                                                \
    V(links, "links up now")                                                                              \
    X(links_made, "links the broker added")                                                               \
    X(links_torn_down, "links removed (peer gone or rewired)")                                            \
    X(links_refused, "links refused: unknown peer model or no free peer slot")                            \
    X(tx_frames, "frames sent to crossover peers (copied, placed in the window, or parked)")              \
    X(tx_bytes, "bytes of tx_frames")                                                                     \
    V(rx_frames, "frames crossover peers delivered into our RX ring (rx_frames includes them)")           \
    V(rx_bytes, "bytes of xover_rx_frames")                                                               \
    X(bytes_copied, "bytes copied into peers' RX buffers (window-mode frames copy none)")                 \
    X(tx_backend_frames, "frames sent on the NIC's backend (no link to the destination, or a group frame)") \
    X(tx_backend_bytes, "bytes of tx_backend_frames")                                                     \
    X(tx_group_frames, "broadcast and multicast frames sent to the backend and every peer")               \
    X(busy_peer_full, "sends answered Busy: the peer's RX ring was full (the frame waits)")               \
    X(busy_peer_not_ready, "sends answered Busy: the peer's RX ring is not set up yet")                   \
    X(dropped_oversize, "frames dropped: larger than the peer's RX buffers can take")                     \
    X(dropped_bad_descriptor, "frames dropped: a peer RX buffer lies outside what we can reach")          \
    X(dropped_bad_ring, "frames dropped: the peer's RX ring is broken")                                   \
    X(busy_peer_locked, "sends answered Busy: a live producer kept the peer's ring locked (the frame waits)") \
    X(reclaim_peer_locked, "window TX completions put off: a live producer kept the peer's ring locked") \
    X(tx_completion_locked, "TX completions put off: a window peer was completing our TX slots")         \
    X(dropped_peer_locked, "group frames a peer missed: a live producer kept its ring locked")            \
    X(dropped_group_peer_full, "group frames a peer missed: its ring stayed full or not ready")           \
    X(dropped_backend, "frames the backend dropped")                                                      \
    X(dropped_filtered, "frames dropped: the peer's receive filter rejects them, as its NIC would")       \
    V(rx_peer_filtered, "frames peers dropped because our receive filter rejects them")                   \
    X(peer_interrupts, "RX interrupts signalled to peers directly (their irqfd)")                         \
    X(peer_irq_via_owner, "peer RX interrupts left to the peer's process (its doorbell)")                 \
    X(peer_irq_masked, "peer RX interrupts left pending: the peer's vector is masked")                    \
    X(peer_irq_merged, "peer RX interrupts merged into one already pending")                              \
    X(batches, "TX batches that ended with frames sent or peers to interrupt")                            \
    X(doorbells_rung, "peers' doorbells rung (their process must act)")                                   \
    X(frames_seen_reported, "frames to MACs with no link reported to the broker (auto wiring)")           \
    X(window_frames, "frames placed in the window peer's RX buffer in place (no copy)")                   \
    X(window_busy, "window sends answered Busy: the peer's ring was full")                                \
    X(window_not_in_place, "window sends whose peer buffer was not the slot: the TX half leaves, copies")  \
    X(window_layout_mismatch, "window sends copied: the peers put frames at different offsets")           \
    X(window_map_waits, "sends that waited for the window peer's mapping or for our TX half to settle")  \
    X(window_leave_waits, "sends that waited for our TX half to leave the element (window_tx_left)")     \
    X(window_tx_private, "window links whose TX half stayed private (rings not fresh): frames copied")   \
    X(window_tx_left, "times our TX half left the element: the rings fell out of step (reset, drop)")    \
    X(window_completed_for_peer, "the window peer's TX slots this process completed")                     \
    X(window_completion_handoffs, "window peer TX completions left to the peer (its doorbell)")           \
    V(window_completed_by_peer, "our window TX slots the peer's process completed")                       \
    V(remaps, "times this NIC's DMA window memory slots were remapped")                                   \
    X(handoff_parked, "frames parked in our shared memory for a peer whose ring was full")                \
    X(handoff_bytes, "bytes of handoff_parked (copied once more, into the slot)")                         \
    X(handoff_runs, "handoff runs started (a peer's ring ran full)")                                      \
    X(handoff_backlog, "sends answered Busy during a run: the frame could not be parked")                 \
    X(handoff_moved_self, "our parked frames this process moved")                                         \
    V(handoff_moved_by_peer, "our parked frames a peer's process moved")                                  \
    X(handoff_moved_for_peers, "peers' parked frames this process moved into our RX ring")                \
    X(handoff_dropped, "parked frames dropped (peer gone, guest reset its TX ring, bad frame)")           \
    X(handoff_abandoned_in_flight, "TX ring resets during a run a mover held: its frames went uncompleted") \
    X(handoff_lock_busy, "moves left to the sender: its lock was busy (its doorbell rung)")               \
    X(handoff_unreachable, "moves left to the sender: its TX ring was out of our reach (its doorbell rung)") \
    X(handoff_tx_irq_signalled, "TX interrupts signalled to senders whose frames we moved")               \
    X(handoff_tx_irq_via_owner, "TX interrupts for moved frames left to the sender's process")            \
    X(doorbell_wakeups, "times our doorbell woke this process")
    struct Counters {
        XOVER_COUNTER_SET(XOVER_CROSSOVER_PORT_COUNTERS, "xover_", std::uint64_t)
        std::uint64_t batch_frames = 0, batch_bytes = 0;  // not printed: flushed into our page's owner counters
        nic::RxTally moved_in;  // not printed: parked frames we moved into our ring (part of rx_frames)
    } c_;
};

}  // namespace xover::crossover
