#include "io_request.hpp"

#include <algorithm>
#include <cstring>

#include "xover/byte_order.hpp"

namespace xover::virtio_snd {

namespace {

constexpr std::size_t kHeaderBytes = 4;  // struct virtio_snd_pcm_xfer
constexpr std::size_t kStatusBytes = 8;  // struct virtio_snd_pcm_status

// The spans of [from, from + len) of the chain's readable (writable) bytes.
std::vector<std::span<std::uint8_t>> slice(const virtio_net::DescriptorChain& chain, bool writable, std::uint64_t from,
                                           std::uint64_t len) {
    std::vector<std::span<std::uint8_t>> out;
    std::uint64_t at = 0;
    for (const auto& seg : chain.segments()) {
        if (seg.device_writable != writable || len == 0) continue;
        std::uint64_t size = seg.bytes.size();
        if (at + size > from) {
            std::uint64_t skip = from > at ? from - at : 0;
            std::uint64_t take = std::min(size - skip, len);
            out.push_back(seg.bytes.subspan(skip, take));
            len -= take;
        }
        at += size;
    }
    return out;
}

}  // namespace

std::size_t IoRequest::take(std::span<std::uint8_t> out) {
    std::size_t copied = 0;
    std::uint64_t skip = done;
    for (auto part : data) {
        if (copied == out.size()) break;
        if (skip >= part.size()) {
            skip -= part.size();
            continue;
        }
        std::size_t n = std::min<std::size_t>(part.size() - skip, out.size() - copied);
        std::memcpy(out.data() + copied, part.data() + skip, n);
        copied += n;
        skip = 0;
    }
    done += copied;
    return copied;
}

std::size_t IoRequest::fill(std::span<const std::uint8_t> in) {
    std::size_t copied = 0;
    std::uint64_t skip = done;
    for (auto part : data) {
        if (copied == in.size()) break;
        if (skip >= part.size()) {
            skip -= part.size();
            continue;
        }
        std::size_t n = std::min<std::size_t>(part.size() - skip, in.size() - copied);
        std::memcpy(part.data() + skip, in.data() + copied, n);
        copied += n;
        skip = 0;
    }
    done += copied;
    return copied;
}

void IoRequest::write_status(std::uint32_t code, std::uint32_t latency_bytes) {
    std::uint8_t bytes[kStatusBytes];
    store_le(std::span(bytes, 4), code);
    store_le(std::span(bytes + 4, 4), latency_bytes);
    std::size_t at = 0;
    for (auto part : status) {
        std::memcpy(part.data(), bytes + at, part.size());
        at += part.size();
    }
}

std::optional<IoRequest> parse_io_request(const virtio_net::DescriptorChain& chain, bool capture) {
    if (chain.readable_bytes() < kHeaderBytes || chain.writable_bytes() < kStatusBytes) return std::nullopt;
    std::uint8_t header[kHeaderBytes];
    gather_readable(chain, 0, header);
    IoRequest r;
    r.head = chain.head();
    r.stream_id = load_le32(header);
    if (capture) {
        r.data_bytes = chain.writable_bytes() - kStatusBytes;
        r.data = slice(chain, true, 0, r.data_bytes);
    } else {
        r.data_bytes = chain.readable_bytes() - kHeaderBytes;
        r.data = slice(chain, false, kHeaderBytes, r.data_bytes);
    }
    r.status = slice(chain, true, chain.writable_bytes() - kStatusBytes, kStatusBytes);
    return r;
}

std::size_t gather_readable(const virtio_net::DescriptorChain& chain, std::uint64_t offset, std::span<std::uint8_t> out) {
    std::size_t copied = 0;
    for (auto part : slice(chain, false, offset, out.size())) {
        std::memcpy(out.data() + copied, part.data(), part.size());
        copied += part.size();
    }
    return copied;
}

std::size_t scatter_writable(const virtio_net::DescriptorChain& chain, std::span<const std::uint8_t> in) {
    std::size_t copied = 0;
    for (auto part : slice(chain, true, 0, in.size())) {
        std::memcpy(part.data(), in.data() + copied, part.size());
        copied += part.size();
    }
    return copied;
}

}  // namespace xover::virtio_snd
