// Window mode (zero copy) on the transmit side: a TX chain that is one
// buffer at the DMA window's TX-half offset head*2048 (virtio_net_hdr, no
// offload asked, then the frame) goes to the crossover peer in place — the
// peer's RX buffer `head` is the same memory — and its used entry waits
// until the peer's guest makes that RX buffer available again: then our
// guest may overwrite it. That wait is the flow control. Everything else
// takes the normal path (transmit_chain: the port copies).
#include <cstring>

#include <spdlog/spdlog.h>

#include "xover/net/ethernet.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/vmm/rate_limited_log.hpp"

namespace xover::virtio_net {

namespace {
vmm::RateLimitedLog g_window_log;
}  // namespace

VirtioNet::WindowTx VirtioNet::try_window(const DescriptorChain& chain) {
    if (!port_) return WindowTx::NotApplicable;
    auto segments = chain.segments();
    if (segments.size() != 1 || segments[0].device_writable) return WindowTx::NotApplicable;
    std::span<const std::uint8_t> buffer = segments[0].bytes;
    if (buffer.size() < kHeaderSize + net::kEthernetHeader) return WindowTx::NotApplicable;
    spec::net::Header hdr;
    std::memcpy(&hdr, buffer.data(), sizeof hdr);
    if (hdr.flags != 0 || hdr.gso_type != spec::net::kGsoNone) return WindowTx::NotApplicable;  // we would edit it
    std::uint16_t head = chain.head();
    if (head >= kQueueSize) return WindowTx::NotApplicable;
    if (port_->window_holds(head)) {
        // The driver made a head available that we have not used yet: a
        // driver bug. Send it the normal way; the lent frame's buffer is
        // the guest's own problem now.
        ++stats_.tx_window_head_reused;
        count_hostile();
        if (g_window_log.allow())
            spdlog::warn("virtio-net {}: TX head {} reused while still lent to the window peer", mac_.to_string(), head);
        return WindowTx::NotApplicable;
    }
    std::span<const std::uint8_t> frame = buffer.subspan(kHeaderSize);
    switch (port_->send_in_window(head, segments[0].gpa, std::uint32_t(kHeaderSize), frame)) {
    case nic::NicPort::WindowSend::NotApplicable: return WindowTx::NotApplicable;
    case nic::NicPort::WindowSend::Busy: return WindowTx::Busy;
    case nic::NicPort::WindowSend::Placed: break;
    }
    ++stats_.tx_window_frames;
    ++stats_.tx_frames;
    stats_.tx_bytes += frame.size();
    return WindowTx::Lent;
}

// Uses every lent head the peer's guest has given back (all of them once
// the window peer is gone): the port does it through our TX view, at the
// shared used position, and asks the peer's guest to notify at its next
// return while heads are still out. The peer's process does the same while
// it serves its guest's RX notify; this is the path for when it could not.
void VirtioNet::complete_window_heads() {
    if (!port_) return;
    auto done = port_->complete_window_tx();
    if (done.completed == 0) return;
    stats_.tx_window_completed += done.completed;
    if (done.reported) interrupt_queue(kTxQueue);  // the view asked the ring's event index already
}

// Adds used elements for `heads` to the TX ring and publishes them. While
// lent heads may be completed too (by our TX view or a window peer's
// process), the ring is written under the port's lock, where the last
// writer left it; while a peer holds the lock, the heads wait
// (complete_waiting_tx_heads).
void VirtioNet::complete_tx_heads(std::span<const std::uint16_t> heads) {
    using Writer = nic::NicPort::TxCompletion;
    Virtqueue& q = queue(kTxQueue);
    std::uint32_t used = 0;
    // Heads already waiting: these wait behind them (one try per pass).
    Writer writer = !tx_heads_waiting_.empty() ? Writer::Busy : port_ ? port_->begin_tx_completion(used) : Writer::Own;
    if (writer == Writer::Busy) {
        // Each head is out once, so this holds at most a queue's worth.
        for (std::uint16_t head : heads)
            if (head < q.layout().size && tx_heads_waiting_.size() < kQueueSize) tx_heads_waiting_.push_back(head);
        stats_.tx_completions_put_off += heads.size();
        return;
    }
    bool shared = writer == Writer::Shared;
    if (shared && std::uint16_t(used) != q.used_index()) q.adopt_used(std::uint16_t(used));
    for (std::uint16_t head : heads)
        if (head < q.layout().size) q.add_used(head, 0);
    q.publish_used();
    if (shared)
        port_->end_tx_completion(q.used_index());
    else if (port_)
        port_->set_tx_completion_pos(q.used_index());
}

// Heads complete_tx_heads() put off while a window peer wrote our used
// ring (from process_tx(): the retry timer's resume_tx(), or a notify).
void VirtioNet::complete_waiting_tx_heads() {
    if (tx_heads_waiting_.empty()) return;
    std::vector<std::uint16_t> heads;
    heads.swap(tx_heads_waiting_);
    complete_tx_heads(heads);  // puts them back if the peer still writes
    if (tx_heads_waiting_.empty()) maybe_interrupt(kTxQueue);
}

// A device reset returns every buffer to the driver; nothing is lent, and
// no put-off completion names a chain of the new ring.
void VirtioNet::forget_window_heads() {
    tx_heads_waiting_.clear();
    if (port_) port_->window_forget();
}

}  // namespace xover::virtio_net
