// virtio-snd (virtio 1.2 §5.14) on the modern PCI transport: one sound
// card with a headphone output and a microphone input.
//
//   queues   0 control, 1 event, 2 tx (playback), 3 rx (capture)
//   streams  0 output, 1 input: S16_LE, 1 or 2 channels, 44.1 or 48 kHz
//   jacks    0 headphone (on the output), 1 microphone (on the input)
//   chmaps   0 output, 1 input: front left, front right
//
// Real-time pacing: a running stream moves one period per period of the
// host clock. The device does not keep time itself; it tells its owner
// when a stream's clock starts and stops (set_clock), and the owner's
// timer (a timerfd on the I/O thread) calls period_elapsed() once per
// period. The periods go to and come from a sound::Backend: a file, nothing,
// or a crossover peer's stream.
//
// Whatever is not supported is refused with the spec's status codes:
// NOT_SUPP for a format, rate, channel count, feature or request the device
// does not offer, BAD_MSG for a malformed request or one the stream's
// state does not allow.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "xover/net/counter_set.hpp"
#include "xover/sound/backend.hpp"
#include "xover/virtio_net/virtio_pci_device.hpp"

namespace xover::virtio_snd {

class PcmStream;
struct IoRequest;

class VirtioSnd : public virtio_net::VirtioPciDevice {
public:
    static constexpr unsigned kControlQueue = 0;
    static constexpr unsigned kEventQueue = 1;
    static constexpr unsigned kTxQueue = 2;
    static constexpr unsigned kRxQueue = 3;
    static constexpr unsigned kQueueCount = 4;
    static constexpr std::uint16_t kQueueSize = 64;

    static constexpr unsigned kOutputStream = 0;
    static constexpr unsigned kInputStream = 1;
    static constexpr unsigned kStreamCount = 2;
    static constexpr unsigned kHeadphoneJack = 0;
    static constexpr unsigned kMicrophoneJack = 1;
    static constexpr unsigned kJackCount = 2;
    static constexpr unsigned kChmapCount = 2;

    static constexpr unsigned kMinChannels = 1;
    static constexpr unsigned kMaxChannels = 2;
    // The longest period the clock keeps (a bound on per-stream buffers).
    static constexpr unsigned kMaxPeriodMs = 1000;
    // Jack events kept while the driver has no event buffer posted.
    static constexpr std::size_t kMaxPendingEvents = 16;
    // MSI-X vectors: one per queue and one for configuration changes.
    static constexpr unsigned kMsixVectors = kQueueCount + 1;

    // Bytes [offset, offset + data.size()) of struct virtio_snd_config:
    // what every virtio-snd transport of xover's answers.
    static void device_config(std::uint64_t offset, std::span<std::uint8_t> data);

    // The frame rate a virtio-snd rate index names, if the device offers it.
    static std::optional<unsigned> rate_of(std::uint8_t rate_index);

    // `only`: the one format the card offers (a crossover card offers its
    // link's format); unset: every rate and channel count above.
    VirtioSnd(vmm::GuestMemory& memory, vmm::MsiController& msi, vmm::IrqLine& intx, sound::Backend& backend,
              std::optional<sound::PcmFormat> only = std::nullopt);

    // Whether the card offers `format` to its guest.
    bool offers(const sound::PcmFormat& format) const;
    ~VirtioSnd() override;

    // The owner's timer for `stream`: called (device lock held) when the
    // stream starts, with its period, and with 0 when it stops.
    using Clock = std::function<void(unsigned stream, std::chrono::nanoseconds period)>;
    void set_clock(Clock clock);
    // One period of `stream` went by on the host clock.
    void period_elapsed(unsigned stream);

    // Something was plugged into (or pulled from) a jack: a crossover
    // link came up or went down. The guest gets a jack event.
    void set_jack_connected(unsigned jack, bool connected);
    bool jack_connected(unsigned jack) const;

    // The device's counters, then the transport's, then the backend's.
    net::Counters counters() const override;
    static std::vector<net::CounterInfo> counter_info();

private:
    std::uint64_t device_features() const override { return 0; }
    void read_device_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void queue_notified(unsigned queue) override;
    void activated() override;
    void device_reset() override;

    void process_control();
    // Handles one control request; returns the response's length.
    std::size_t control_request(std::span<const std::uint8_t> request, std::span<std::uint8_t> response);
    std::size_t query_info(std::uint32_t code, std::span<const std::uint8_t> request, std::span<std::uint8_t> response);
    std::uint32_t pcm_request(std::uint32_t code, std::span<const std::uint8_t> request);
    void process_io(unsigned queue);
    void complete_io(unsigned queue, const IoRequest& request, std::uint32_t used_length);
    void queue_jack_event(unsigned jack);
    void repeat_events_since_jack_info();
    void flush_events();
    void stream_clock(unsigned stream, bool running);

    sound::Backend& backend_;
    std::optional<sound::PcmFormat> only_;
    Clock clock_;
    std::array<std::unique_ptr<PcmStream>, kStreamCount> streams_;
    std::array<bool, kJackCount> jack_connected_{};
    // A driver may copy JACK_INFO's `connected` some time after the reply
    // (Linux does), over a jack event that came in between. Such events are
    // sent again once the driver's next control request shows it is done.
    // Events wait until the driver's first control request. A driver may
    // take event buffers (from DRIVER_OK on) before it can handle an event:
    // Linux 6.1 reads the jack count from the config, and only then
    // allocates its jack table and asks JACK_INFO, so an event in between
    // is a NULL write in the guest. JACK_INFO's reply carries the newest
    // state, so holding the events loses nothing.
    bool driver_asked_ = false;
    bool jack_info_answered_ = false;
    bool jack_info_copied_ = false;  // a later request came: the repeat is due
    std::array<bool, kJackCount> event_since_jack_info_{};
    std::deque<std::array<std::uint8_t, 8>> pending_events_;  // struct virtio_snd_event
    std::array<bool, kQueueCount> used_added_{};  // a used element waits for publish + interrupt
    virtio_net::DescriptorChain chain_;     // control and event queues
    virtio_net::DescriptorChain io_chain_;  // tx and rx (RELEASE drains them while a control chain is held)

#define XOVER_VIRTIO_SND_COUNTERS(X, V)                                                                 \
    X(control_requests, "control requests the driver sent")                                             \
    X(control_refused, "control requests answered BAD_MSG or NOT_SUPP")                                 \
    V(playback_periods, "periods of the output stream's clock while it ran")                            \
    V(playback_bytes, "bytes the guest played (into the backend)")                                      \
    V(underruns, "output periods the guest had not queued enough data for")                             \
    V(underrun_bytes, "bytes of output periods the guest did not supply (nothing was played for them)") \
    V(capture_periods, "periods of the input stream's clock while it ran")                              \
    V(capture_bytes, "bytes captured into the guest's buffers")                                         \
    V(overruns, "input periods the guest had not queued room for")                                      \
    V(overrun_bytes, "captured bytes lost: no guest buffer took them (a file input waits instead)")       \
    V(backend_refused, "stream starts the backend could not take (that run plays into nothing or captures silence)") \
    X(io_bad_requests, "I/O requests with no room for the header or status (returned unused)")           \
    X(io_refused, "I/O requests for a wrong or unprepared stream (answered BAD_MSG)")                    \
    X(jack_events, "jack events sent to the driver")                                                    \
    X(jack_events_repeated, "jack events sent again: they came between a JACK_INFO reply and the next request")     \
    X(jack_events_dropped, "jack events dropped: the driver posted no event buffer for too long")
    struct Stats {
        XOVER_COUNTER_SET(XOVER_VIRTIO_SND_COUNTERS, "", std::uint64_t)
    } stats_;
};

}  // namespace xover::virtio_snd
