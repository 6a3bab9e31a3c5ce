// A restarted broker taking over the links its predecessor made. The VMs
// keep their links while no broker runs (the shared memory stays mapped);
// when they register again each reports its live links (LiveLink). A link
// is adopted, with no LinkUp and no pause in its traffic, once both ends
// have reported it and the two reports mirror each other. It is refused
// (the caller sends LinkDown to the end that reported it) when:
//   - the reports disagree, or the planner will not take it (ids, slots,
//     policy, mode: LinkPlanner::adopt);
//   - the other end registers without reporting it (it restarted);
//   - the other end does not register within the grace period (it died
//     while no broker ran), so its survivor stops writing to a dead peer.
// A refused pair can be linked again by the planner's normal rules.
// While a report waits for the other end it holds its link id and the
// slot the other end uses in the reporter's state page, so no new link
// collides with it. No sockets or fds: unit tested on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xover/crossover/link_planner.hpp"
#include "xover/crossover/protocol.hpp"

namespace xover::crossover {

// Longer than a VM's longest reconnect delay (vm_agent.hpp's backoff with
// its jitter), so two ends of a link that both live find each other.
inline constexpr std::chrono::milliseconds kAdoptionGrace{5000};

class LinkAdoption {
public:
    using Clock = std::chrono::steady_clock;

    struct Refused {
        NicRef reporter;  // the NIC to send LinkDown to
        std::uint64_t link_id = 0;
        std::string reason;
    };
    struct Outcome {
        std::vector<Link> adopted;
        std::vector<Refused> refused;
    };

    explicit LinkAdoption(std::chrono::milliseconds grace = kAdoptionGrace) : grace_(grace) {}

    // VM `vm`, just admitted to `planner`, reports the links it has.
    Outcome reported(LinkPlanner& planner, const std::string& vm, const std::vector<LiveLink>& links,
                     Clock::time_point now);
    // Reports whose other end did not come back by `now`.
    Outcome expire(LinkPlanner& planner, Clock::time_point now);
    // VM `vm` left: its reports wait no more (nobody is told).
    void vm_gone(LinkPlanner& planner, const std::string& vm);

    std::optional<Clock::time_point> next_deadline() const;
    std::size_t waiting() const { return waiting_.size(); }

private:
    struct Waiting {
        std::string vm;
        LiveLink link;
        Clock::time_point deadline;
    };
    // One report checked on its own (before its other end is looked for).
    std::optional<std::string> check(const LinkPlanner& planner, const std::string& vm, const LiveLink& l) const;
    void match(LinkPlanner& planner, const std::string& vm, const LiveLink& l, Waiting other, Outcome& out);
    Refused refuse(LinkPlanner& planner, const Waiting& w, std::string reason);

    std::chrono::milliseconds grace_;
    std::vector<Waiting> waiting_;
};

}  // namespace xover::crossover
