// CrossoverPort, the ordering half: switching a destination from the slow
// path to a link without reordering (see slow_path_arrivals.hpp), and group
// frames (broadcast/multicast) delivered to the backend and to every peer
// exactly once, without loss when a peer's ring is only momentarily full.
#include <spdlog/spdlog.h>

#include "xover/crossover/crossover_port.hpp"

namespace xover::crossover {

namespace {

using Clock = std::chrono::steady_clock;

// How long the peer's arrival count may stand still before we conclude the
// frames still missing were lost on the slow path, not delayed.
constexpr std::chrono::milliseconds kDrainStall{200};
// How often to look again while draining (no doorbell says "arrived").
constexpr std::chrono::milliseconds kDrainPoll{1};

std::uint64_t fingerprint(std::span<const std::uint8_t> frame) {
    std::uint64_t h = 0xcbf29ce484222325ull ^ frame.size();
    for (std::uint8_t b : frame) h = (h ^ b) * 0x100000001b3ull;
    return h;
}

}  // namespace

void CrossoverPort::note_slow_delivery(std::span<const std::uint8_t> frame, bool placed) {
    page_.state().slow_arrivals.set_waiting(!placed);
    if (placed) slow_rx_placed_.store(true, std::memory_order_relaxed);
    if (!placed || frame.size() < 14 || own_key_ == 0) return;
    if (nic::mac_key(frame.data()) != own_key_ || (frame[6] & 1)) return;  // unicast to us only
    page_.state().slow_arrivals.count(nic::mac_key(frame.data() + 6));
}

void CrossoverPort::start_drain(Peer& peer) {
    peer.draining = tally_.frames_to(nic::mac_key(peer.link->peer_mac.bytes.data())) > 0;
    peer.drain_seen = 0;
    peer.drain_since = {};
    if (peer.draining) ++oc_.drains;
}

bool CrossoverPort::drained(Peer& peer) {
    if (!peer.draining) return true;
    const std::uint64_t sent = tally_.frames_to(nic::mac_key(peer.link->peer_mac.bytes.data()));
    const std::uint64_t arrived = peer.link->peer_state().slow_arrivals.frames_from(own_key_);
    if (own_key_ == 0 || arrived >= sent) {
        peer.draining = false;
        return true;
    }
    const auto now = Clock::now();
    // Standing still while the peer holds a frame for want of RX buffers is
    // a slow guest, not a loss: the stall clock starts again.
    const bool peer_waiting = peer.link->peer_state().slow_arrivals.waiting();
    if (peer.drain_since == Clock::time_point{} || arrived != peer.drain_seen || peer_waiting) {
        peer.drain_seen = arrived;
        peer.drain_since = now;
    } else if (now - peer.drain_since >= kDrainStall) {
        ++oc_.drain_timeouts;
        peer.draining = false;
        spdlog::warn("{}: {} of {} frames sent to {} over the backend never arrived; switching to the crossover",
                     name_, sent - arrived, sent, peer.link->peer_mac.to_string());
        return true;
    }
    ++oc_.drain_waits;
    retry_later(kDrainPoll);
    return false;
}

void CrossoverPort::forget_group_peer(const Peer& peer) {
    std::size_t i = std::size_t(&peer - peers_.data());
    if (i < peers_.size()) group_done_ &= ~(1u << i);
}

net::Backend::SendResult CrossoverPort::send_group(std::span<const std::uint8_t> frame) {
    using R = net::Backend::SendResult;
    // A retry of a frame some receivers already have? (If the model
    // dropped that frame, say on a reset, this is a new one.)
    if (group_done_ != 0 && fingerprint(frame) != group_fingerprint_) {
        group_done_ = 0;
        group_any_ = false;
        group_busy_since_ = {};
    }
    if (!(group_done_ & kGroupBackendDone)) {
        // The physical path first: busy there means nobody has it yet.
        auto r = to_backend(frame);
        if (r == R::Busy) return r;
        group_done_ |= kGroupBackendDone;
        group_any_ = r == R::Sent;
    }
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        Peer& p = peers_[i];
        if (!p.link || (group_done_ & (1u << i))) continue;
        auto r = to_peer(p, frame, Mode::Group);
        if (r == R::Busy) {
            if (p.group_stalled) {
                ++oc_.group_peer_stalled_skips;
            } else {
                const auto now = Clock::now();
                if (group_busy_since_ == Clock::time_point{}) group_busy_since_ = now;
                if (now - group_busy_since_ < group_peer_patience_) {
                    // The peer rings our doorbell when it returns buffers; the
                    // timer only enforces the patience limit.
                    group_fingerprint_ = fingerprint(frame);
                    ++oc_.group_retries;
                    retry_later(group_peer_patience_);
                    return R::Busy;
                }
                ++oc_.group_peer_timeouts;
                p.group_stalled = true;
                spdlog::info("{}: peer {} took no group frame for {} ms; it misses them while its ring is full",
                             name_, p.link->peer_mac.to_string(), group_peer_patience_.count());
            }
            ++c_.dropped_group_peer_full;
            p.link->counters().dropped.fetch_add(1, std::memory_order_relaxed);
        } else if (r == R::Sent) {
            group_any_ = true;
        }
        group_done_ |= 1u << i;
        group_busy_since_ = {};
    }
    ++c_.tx_group_frames;
    const bool any = group_any_;
    group_done_ = 0;
    group_any_ = false;
    group_busy_since_ = {};
    return any ? R::Sent : R::Dropped;
}

}  // namespace xover::crossover
