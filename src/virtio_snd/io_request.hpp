// Private to src/virtio_snd: one PCM I/O request (virtio 1.2 §5.14.6.8) as
// the device keeps it between the driver's notify and its completion.
//
//   playback (tx queue): [xfer header | PCM data]  readable
//                        [status]                  writable
//   capture  (rx queue): [xfer header]             readable
//                        [PCM data | status]       writable
//
// The header and status may be split across descriptors anywhere, so both
// are gathered and scattered byte-wise; the data part is a list of spans
// into guest memory, consumed (playback) or filled (capture) a period at a
// time as the stream's clock runs.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "xover/virtio_net/virtqueue.hpp"

namespace xover::virtio_snd {

struct IoRequest {
    std::uint16_t head = 0;
    std::uint32_t stream_id = 0;
    std::vector<std::span<std::uint8_t>> data;    // PCM bytes, in order
    std::vector<std::span<std::uint8_t>> status;  // the 8 bytes of virtio_snd_pcm_status
    std::uint64_t data_bytes = 0;
    std::uint64_t done = 0;  // bytes already played or filled

    std::uint64_t remaining() const { return data_bytes - done; }
    // Playback: copies up to out.size() of the next unplayed bytes into `out`.
    std::size_t take(std::span<std::uint8_t> out);
    // Capture: copies up to in.size() bytes of `in` into the next unfilled bytes.
    std::size_t fill(std::span<const std::uint8_t> in);
    // Writes the status (code, latency) where the driver asked for it.
    void write_status(std::uint32_t code, std::uint32_t latency_bytes);
    // The used length the driver is told: every byte the device wrote.
    std::uint32_t used_length(bool capture) const { return std::uint32_t((capture ? done : 0) + 8); }
};

// Splits `chain` as a request of the tx (capture = false) or rx queue.
// nullopt: it has no room for the header or the status (a broken driver;
// the chain is returned unused).
std::optional<IoRequest> parse_io_request(const virtio_net::DescriptorChain& chain, bool capture);

// Copies `out.size()` readable bytes of `chain`, starting `offset` bytes
// into its readable part; returns how many there were.
std::size_t gather_readable(const virtio_net::DescriptorChain& chain, std::uint64_t offset, std::span<std::uint8_t> out);
// Writes `in` at the start of `chain`'s writable part; returns how many fit.
std::size_t scatter_writable(const virtio_net::DescriptorChain& chain, std::span<const std::uint8_t> in);

}  // namespace xover::virtio_snd
