// Private to src/virtio_snd: one PCM stream of the device — its parameters,
// its state machine (virtio 1.2 §5.14.6.6.1), the I/O requests the driver
// queued for it, and what one period of the stream's clock does to them.
//
//   SET_PARAMS  from Idle, ParamsSet, Prepared, Released
//   PREPARE     from ParamsSet, Prepared, Released
//   START       from Prepared, Stopped
//   STOP        from Running
//   RELEASE     from Prepared, Stopped
//
// The device runs the stream's clock (the owner's timer calls period()
// once per period while Running). Each period:
//   output: the next period_bytes of queued data are played into the
//           backend; a request whose data is all played is completed.
//           Missing data is an underrun: nothing is made up.
//   input:  the backend gives one period; it fills the queued requests,
//           each completed once full. Bytes with no request to take them
//           are an overrun: lost, as a real device would lose them.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "io_request.hpp"
#include "xover/sound/backend.hpp"
#include "xover/sound/pcm_format.hpp"

struct virtio_snd_pcm_set_params;

namespace xover::virtio_snd {

class PcmStream {
public:
    enum class State : std::uint8_t { Idle, ParamsSet, Prepared, Running, Stopped, Released };

    // What one stream's periods did, added up (the device's counters).
    struct Tally {
        std::uint64_t periods = 0;
        std::uint64_t bytes = 0;           // played or captured into requests
        std::uint64_t xruns = 0;           // periods with an underrun or overrun
        std::uint64_t xrun_bytes = 0;      // bytes missing (output) or lost (input)
        std::uint64_t backend_refused = 0; // starts the backend could not take
    };

    // Completes a request: the device writes the used element (head, length).
    using Complete = std::function<void(const IoRequest&, std::uint32_t used_length)>;

    explicit PcmStream(sound::Direction direction) : direction_(direction) {}

    sound::Direction direction() const { return direction_; }
    State state() const { return state_; }
    const sound::PcmFormat& format() const { return format_; }
    std::uint32_t period_bytes() const { return period_bytes_; }
    // How long one period lasts on the host clock.
    std::chrono::nanoseconds period_duration() const { return format_.duration_of(period_bytes_); }

    // The control requests; each returns a virtio-snd status code.
    // `offered`: whether the card offers a format (NOT_SUPP if not).
    std::uint32_t set_params(const virtio_snd_pcm_set_params& params,
                             const std::function<bool(const sound::PcmFormat&)>& offered);
    std::uint32_t prepare();
    std::uint32_t start(sound::Backend& backend);
    std::uint32_t stop(sound::Backend& backend);
    std::uint32_t release(const Complete& complete);

    // Whether I/O requests may be queued now (after PREPARE, before RELEASE).
    bool takes_io() const { return state_ == State::Prepared || state_ == State::Running || state_ == State::Stopped; }
    void queue(IoRequest request) { requests_.push_back(std::move(request)); }
    std::size_t queued() const { return requests_.size(); }

    // One period of the clock (see the top of the file). Returns whether a
    // request was completed.
    bool period(sound::Backend& backend, const Complete& complete);

    // A device reset: back to Idle, requests forgotten (the queues are
    // gone), the backend stopped if it was playing or capturing.
    void reset(sound::Backend& backend);

    const Tally& tally() const { return tally_; }

private:
    std::uint32_t queued_bytes() const;
    // Bytes of one period the queued capture requests can take, rounded
    // up to whole frames.
    std::size_t capture_room() const;

    sound::Direction direction_;
    State state_ = State::Idle;
    sound::PcmFormat format_{};
    std::uint32_t buffer_bytes_ = 0;
    std::uint32_t period_bytes_ = 0;
    bool backend_took_ = false;  // the backend accepted this run's format
    std::deque<IoRequest> requests_;
    std::vector<std::uint8_t> scratch_;  // one period
    Tally tally_;
};

}  // namespace xover::virtio_snd
