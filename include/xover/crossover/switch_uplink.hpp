// The uplink port of the broker's slow-path switch: a tap device through
// which the VMs on the switch reach the host (and, with the tap in a
// bridge, the outside world). `xover broker --uplink tap:NAME`, or
// `uplink = "tap:NAME"` at the top of an `xover up` file.
//
// Lossy like a wire: a frame the tap will not take is dropped and counted
// by reason; a read error (the interface was deleted) stops reading from
// it, logs once, and leaves the broker and the VMs running. Everything
// runs on the broker's poll loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "xover/crossover/status_json.hpp"
#include "xover/kvm/unique_fd.hpp"

namespace xover::crossover {

class SwitchUplink {
public:
    // Why a frame to or from the uplink was not delivered.
    enum class Drop : std::uint8_t {
        TapFull,     // the tap refused it for now (EAGAIN, ENOBUFS)
        LinkDown,    // the tap interface is down (EIO)
        TapError,    // any other write error (interface deleted, ...)
        UnknownDst,  // from the tap: unicast to a MAC no port has
        Looped,      // from the tap: a port's own source MAC came back
        Runt,        // from the tap: shorter than an Ethernet header
        PortFull,    // from the tap: the destination port's queue is at its limit
        kCount
    };
    static const char* name(Drop reason);

    struct Counters {
        std::uint64_t to_tap_frames = 0, to_tap_bytes = 0;
        std::uint64_t from_tap_frames = 0, from_tap_bytes = 0;
        std::array<std::uint64_t, std::size_t(Drop::kCount)> dropped{};
        std::uint64_t read_errors = 0;
    };

    // "tap:IFNAME" -> an uplink on that existing tap (brought up). Throws
    // xover::Error with one line: a malformed spec, no such interface, not
    // a tap, no permission, already attached.
    static std::unique_ptr<SwitchUplink> open(const std::string& spec);

    // Any fd that behaves like a tap (one frame per read/write, non-blocking):
    // unit tests use a socket pair. `ifname` (may be empty) is asked for
    // its link state in the status report.
    SwitchUplink(kvm::UniqueFd fd, std::string description, std::string ifname);

    int fd() const { return fd_.get(); }
    // False once reading failed for good: the switch stops polling it.
    bool receiving() const { return receiving_; }

    // One frame from the tap into `buffer`: its size, or nullopt when none
    // is waiting or reading has failed (see receiving()).
    std::optional<std::size_t> receive(std::span<std::uint8_t> buffer);
    // The poll said error/hang-up with nothing to read.
    void receive_failed(const char* why);
    // Writes one frame to the tap; failures are counted, never thrown.
    void send(std::span<const std::uint8_t> frame);

    void count_delivered(std::size_t bytes);
    void count_drop(Drop reason);

    const Counters& counters() const { return counters_; }
    const std::string& describe() const { return description_; }
    // "up" | "down" | "gone" ("-" without an interface name).
    std::string link() const;
    std::string status_text() const;
    Json status_json() const;

private:
    kvm::UniqueFd fd_;
    // Asks the tap's state in the namespace the tap is in, also after a
    // jail moved the broker to a network namespace of its own.
    kvm::UniqueFd query_;
    std::string description_, ifname_;
    bool receiving_ = true;
    Counters counters_;
    std::array<bool, std::size_t(Drop::kCount)> logged_{};  // first drop of each kind is logged
};

}  // namespace xover::crossover
