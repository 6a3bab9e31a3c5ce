// Window mode (zero copy) on the transmit side: a TX chain that is one
// buffer at the DMA window's TX-half offset head*2048 (virtio_net_hdr, no
// offload asked, then the frame) goes to the crossover peer in place — the
// peer's RX buffer `head` is the same memory — and its used entry waits
// until the peer's guest makes that RX buffer available again: then our
// guest may overwrite it. That wait is the flow control. Everything else
// takes the normal path (transmit_chain: the port copies).
#include <cstring>

#include <spdlog/spdlog.h>

#include "rate_limited_log.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/virtio_net/virtio_spec.hpp"

namespace xover::virtio_net {

namespace {
constexpr std::size_t kEthernetHeader = 14;
RateLimitedLog g_window_log;
}  // namespace

VirtioNet::WindowTx VirtioNet::try_window(const DescriptorChain& chain) {
    if (!port_) return WindowTx::NotApplicable;
    auto segments = chain.segments();
    if (segments.size() != 1 || segments[0].device_writable) return WindowTx::NotApplicable;
    std::span<const std::uint8_t> buffer = segments[0].bytes;
    if (buffer.size() < kHeaderSize + kEthernetHeader) return WindowTx::NotApplicable;
    spec::net::Header hdr;
    std::memcpy(&hdr, buffer.data(), sizeof hdr);
    if (hdr.flags != 0 || hdr.gso_type != spec::net::kGsoNone) return WindowTx::NotApplicable;  // we would edit it
    std::uint16_t head = chain.head();
    if (head >= tx_lent_.size()) return WindowTx::NotApplicable;
    if (tx_lent_[head]) {
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
    tx_lent_[head] = true;
    ++tx_lent_count_;
    ++stats_.tx_window_frames;
    ++stats_.tx_frames;
    stats_.tx_bytes += frame.size();
    return WindowTx::Lent;
}

// Uses every lent head the peer's guest has given back (all of them once
// the window peer is gone), then interrupts per the ring's rules. If some
// are still out, asks the peer to ring our doorbell and looks once more
// (the peer may have returned buffers just before the request).
void VirtioNet::complete_window_heads() {
    if (tx_lent_count_ == 0 || !port_) return;
    Virtqueue& q = queue(kTxQueue);
    bool any = false;
    auto complete = [&](std::uint16_t head) {
        if (head >= tx_lent_.size() || !tx_lent_[head]) return;  // not ours (a reset forgot it)
        tx_lent_[head] = false;
        --tx_lent_count_;
        q.add_used(head, 0);
        ++stats_.tx_window_completed;
        any = true;
    };
    for (int attempt = 0; attempt < 2 && tx_lent_count_ != 0; ++attempt) {
        bool present = true;
        bool arm = attempt == 1;
        std::size_t n;
        do {
            n = port_->window_reclaim(tx_reclaimed_, arm, present);
            arm = false;
            for (std::size_t i = 0; i < n && i < tx_reclaimed_.size(); ++i) complete(tx_reclaimed_[i]);
        } while (n == tx_reclaimed_.size());
        if (!present) {
            for (std::uint16_t h = 0; h < tx_lent_.size(); ++h) complete(h);
            break;
        }
    }
    if (!any) return;
    q.publish_used();
    maybe_interrupt(kTxQueue);
}

// A device reset returns every buffer to the driver; nothing is lent.
void VirtioNet::forget_window_heads() {
    tx_lent_.fill(false);
    tx_lent_count_ = 0;
}

}  // namespace xover::virtio_net
