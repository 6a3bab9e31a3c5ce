// What a PCM stream carries: interleaved signed 16-bit little-endian
// samples (virtio-snd's S16), `channels` per frame, `rate` frames a second.
// The one format xover's sound devices and backends move.
#pragma once

#include <chrono>
#include <cstdint>

namespace xover::sound {

enum class Direction : std::uint8_t { Output, Input };  // playback, capture

struct PcmFormat {
    static constexpr unsigned kBytesPerSample = 2;  // S16_LE
    unsigned channels = 2;
    unsigned rate = 48000;

    unsigned frame_bytes() const { return channels * kBytesPerSample; }
    std::uint64_t bytes_per_second() const { return std::uint64_t(rate) * frame_bytes(); }
    // How long `bytes` of this format play (rounded down to nanoseconds).
    std::chrono::nanoseconds duration_of(std::uint64_t bytes) const {
        return std::chrono::nanoseconds(bytes * 1'000'000'000ull / bytes_per_second());
    }
    friend bool operator==(const PcmFormat&, const PcmFormat&) = default;
};

}  // namespace xover::sound
