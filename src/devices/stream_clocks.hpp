// Private to src/devices: a sound card's stream clocks — one periodic
// timerfd per stream on the I/O thread, armed while the stream runs, each
// expiry one VirtioSnd::period_elapsed(). The host's CLOCK_MONOTONIC keeps
// the time, so a card plays and captures at its rate however late the
// thread wakes (a late wake-up catches up, within bounds).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <string>

#include "xover/kvm/unique_fd.hpp"
#include "xover/net/counter_set.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::devices {

class StreamClocks {
public:
    // Takes over `card`'s clock (VirtioSnd::set_clock) until destroyed.
    // Throws xover::Error naming `name` if a timerfd cannot be made.
    StreamClocks(vmm::EventLoop& loop, virtio_snd::VirtioSnd& card, const std::string& name);
    ~StreamClocks();
    StreamClocks(const StreamClocks&) = delete;
    StreamClocks& operator=(const StreamClocks&) = delete;

    // clock_late_periods, clock_skipped_periods.
    void append_counters(net::Counters& out) const;

    // A timer that fires this many periods late catches up at most this
    // many; beyond that the host did not run us at all (stopped, swapped)
    // and the periods in between are skipped, as a real device's DMA would
    // have overrun or underrun through them.
    static constexpr std::uint64_t kMaxCatchUp = 8;

private:
    static constexpr unsigned kStreams = virtio_snd::VirtioSnd::kStreamCount;

    void arm(unsigned stream, std::chrono::nanoseconds period);
    void ticked(unsigned stream);

    vmm::EventLoop& loop_;
    virtio_snd::VirtioSnd& card_;
    std::string name_;
    std::array<kvm::UniqueFd, kStreams> timers_;
    std::atomic<std::uint64_t> late_periods_{0};
    std::atomic<std::uint64_t> skipped_periods_{0};
};

}  // namespace xover::devices
