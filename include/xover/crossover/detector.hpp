// The cross-talk detector, VM side: per NIC, which destination MACs are
// crossover peers (fast path) and which unknown unicast MACs to report to
// the broker (auto wiring). The broker-side half is LinkPlanner::frame_seen.
//
// A NIC uses one PeerTable under its own lock. classify() is on the
// per-frame path: no allocation, no lock, no syscall.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "xover/crossover/client.hpp"
#include "xover/net/mac_address.hpp"

namespace xover::crossover {

// The destination MAC of an Ethernet frame (nullopt if shorter than a header).
std::optional<net::MacAddress> frame_destination(std::span<const std::uint8_t> frame);

class PeerTable {
public:
    enum class Verdict {
        Peer,       // unicast to a linked peer: take the crossover fast path
        Group,      // broadcast/multicast: every peer (peers()) and the physical path
        Unknown,    // unicast to a MAC with no link: physical path (and maybe report it)
        Malformed,  // too short to have a destination
    };
    struct Result {
        Verdict verdict;
        PeerLink* peer;  // set for Verdict::Peer
    };

    Result classify(std::span<const std::uint8_t> frame) const;

    // Returns false when the table is full (kMaxProducerSlots links).
    bool add(std::shared_ptr<PeerLink> link);
    // Returns the removed link (so the caller can drop it outside hot code).
    std::shared_ptr<PeerLink> remove(std::uint64_t link_id);

    std::span<const std::shared_ptr<PeerLink>> peers() const { return {links_.data(), count_}; }

    // Whether to send FrameSeen for `dst` now: once per MAC per `interval`
    // (a peer that registers later is still found), at most kReportMemory
    // MACs remembered.
    bool should_report(const net::MacAddress& dst, std::chrono::steady_clock::time_point now,
                       std::chrono::milliseconds interval = std::chrono::seconds(1));

    static constexpr std::size_t kReportMemory = 16;

private:
    std::array<std::shared_ptr<PeerLink>, nic::kMaxProducerSlots> links_{};
    std::size_t count_ = 0;
    struct Reported {
        net::MacAddress mac;
        std::chrono::steady_clock::time_point when;
    };
    std::array<Reported, kReportMemory> reported_{};
    std::size_t reported_count_ = 0;
    std::size_t next_reported_ = 0;
};

}  // namespace xover::crossover
