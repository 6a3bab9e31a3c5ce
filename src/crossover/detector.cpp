#include "xover/crossover/detector.hpp"

#include <algorithm>
#include <cstring>

namespace xover::crossover {

std::optional<net::MacAddress> frame_destination(std::span<const std::uint8_t> frame) {
    if (frame.size() < 14) return std::nullopt;  // dst, src, ethertype
    net::MacAddress mac;
    std::memcpy(mac.bytes.data(), frame.data(), 6);
    return mac;
}

PeerTable::Result PeerTable::classify(std::span<const std::uint8_t> frame) const {
    auto dst = frame_destination(frame);
    if (!dst) return {Verdict::Malformed, nullptr};
    if (dst->is_multicast()) return {Verdict::Group, nullptr};
    for (std::size_t i = 0; i < count_; ++i)
        if (links_[i]->peer_mac == *dst) return {Verdict::Peer, links_[i].get()};
    return {Verdict::Unknown, nullptr};
}

bool PeerTable::add(std::shared_ptr<PeerLink> link) {
    if (count_ == links_.size()) return false;
    // A new link may be to a MAC we reported: forget it so a later
    // departure and return of that peer is reported afresh.
    for (std::size_t i = 0; i < reported_count_; ++i)
        if (reported_[i].mac == link->peer_mac) reported_[i].when = {};
    links_[count_++] = std::move(link);
    return true;
}

std::shared_ptr<PeerLink> PeerTable::remove(std::uint64_t link_id) {
    for (std::size_t i = 0; i < count_; ++i) {
        if (links_[i]->id != link_id) continue;
        std::shared_ptr<PeerLink> removed = std::move(links_[i]);
        links_[i] = std::move(links_[count_ - 1]);
        --count_;
        return removed;
    }
    return nullptr;
}

bool PeerTable::should_report(const net::MacAddress& dst, std::chrono::steady_clock::time_point now,
                              std::chrono::milliseconds interval) {
    for (std::size_t i = 0; i < reported_count_; ++i) {
        if (!(reported_[i].mac == dst)) continue;
        if (reported_[i].when != std::chrono::steady_clock::time_point{} && now - reported_[i].when < interval)
            return false;
        reported_[i].when = now;
        return true;
    }
    reported_[next_reported_] = {dst, now};
    next_reported_ = (next_reported_ + 1) % kReportMemory;
    reported_count_ = std::min(reported_count_ + 1, kReportMemory);
    return true;
}

}  // namespace xover::crossover
