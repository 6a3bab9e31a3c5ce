// Where a sound device's streams go on the host side: the output stream's
// periods are played into it, the input stream's periods are captured from
// it. The device paces both (one call per period of the stream's clock), so
// a backend never blocks and never keeps time itself.
//
// Threads: the device calls a backend from its owner's I/O thread, with the
// device lock held; calls never overlap.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "xover/net/counter_set.hpp"
#include "xover/sound/pcm_format.hpp"
#include "xover/sound/spec.hpp"

namespace xover::sound {

class Backend {
public:
    virtual ~Backend() = default;

    // A stream of `direction` starts (or restarts) with `format`; every
    // period until stop() has that format. False: the backend cannot take
    // this format (a WAV input of another rate, say); the device then plays
    // into nothing / captures silence for this run and counts it.
    virtual bool start(Direction direction, const PcmFormat& format) = 0;
    virtual void stop(Direction direction) = 0;

    // One period the guest played: whole frames, interleaved S16_LE.
    virtual void play(std::span<const std::uint8_t> period) = 0;
    // Fills one period for the guest to capture: whole frames; silence
    // (zeros) where the backend has nothing.
    virtual void capture(std::span<std::uint8_t> period) = 0;

    // Whether the input waits for the guest. A source read on demand (a
    // file) does: the device asks capture() only for what the guest's
    // queued buffers can take, so a guest that falls behind its clock gets
    // every byte late rather than a stream with a gap. A live source (the
    // sound cable, a microphone) does not: it runs on the clock, and what
    // no buffer takes is an overrun, lost, as on hardware.
    virtual bool capture_waits_for_guest() const { return false; }

    // Whether something is plugged into the jack of `direction` (the
    // device reports it to the guest as the jack's connection).
    virtual bool plugged(Direction direction) const = 0;

    // The backend's own counters, for --stats.
    virtual net::Counters counters() const { return {}; }
};

// Opens the backend `spec` describes. Throws xover::Error with a one-line
// message (a WAV input that cannot be read or is not S16_LE PCM, an output
// that cannot be created).
std::unique_ptr<Backend> make_backend(const BackendSpec& spec);

}  // namespace xover::sound
