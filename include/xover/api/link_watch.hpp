// The links of one or more brokers as their control APIs show them,
// sampled once a second: the last counters seen of every link, kept after
// the link went down (`xover up`'s summary: links go down as its VMs exit,
// so the broker no longer has them at the end).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "xover/json.hpp"

namespace xover::api {

class LinkWatch {
public:
    explicit LinkWatch(std::vector<std::filesystem::path> brokers) : brokers_(std::move(brokers)) {}

    // Samples the brokers if a second has passed since the last sample
    // (waiting at most `timeout` for each). A broker that does not answer
    // is skipped: only that sample is lost.
    void poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
    // One line a link: its ends, mode, and per direction frames, bytes,
    // drops and frames/s over the time it was seen up.
    std::vector<std::string> summary() const;

private:
    struct Seen {
        Json link;
        std::chrono::steady_clock::time_point first, last;
    };
    std::vector<std::filesystem::path> brokers_;
    std::chrono::steady_clock::time_point next_{};
    std::map<std::pair<std::string, std::uint64_t>, Seen> links_;  // (broker, link id)
};

}  // namespace xover::api
