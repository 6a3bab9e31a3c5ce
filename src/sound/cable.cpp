#include "xover/sound/cable.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "xover/error.hpp"

namespace xover::sound {

namespace {

std::uint64_t backlog_limit(const PcmFormat& format, std::uint64_t ring_bytes) {
    std::uint64_t bytes = format.bytes_per_second() * kCableMaxBacklog.count() / 1000;
    bytes -= bytes % format.frame_bytes();
    return std::min(bytes, ring_bytes);
}

// Copies between a position in the ring (modulo its size) and a buffer.
void ring_copy_out(std::span<const std::uint8_t> ring, std::uint64_t pos, std::span<std::uint8_t> out) {
    std::size_t at = std::size_t(pos % ring.size());
    std::size_t first = std::min(out.size(), ring.size() - at);
    std::memcpy(out.data(), ring.data() + at, first);
    std::memcpy(out.data() + first, ring.data(), out.size() - first);
}

void ring_copy_in(std::span<std::uint8_t> ring, std::uint64_t pos, std::span<const std::uint8_t> in) {
    std::size_t at = std::size_t(pos % ring.size());
    std::size_t first = std::min(in.size(), ring.size() - at);
    std::memcpy(ring.data() + at, in.data(), first);
    std::memcpy(ring.data(), in.data() + first, in.size() - first);
}

CableHeader& header_of(std::span<std::uint8_t> region) {
    return *std::launder(reinterpret_cast<CableHeader*>(region.data()));
}

}  // namespace

void CableReader::initialize(std::span<std::uint8_t> region, const PcmFormat& format) {
    if (region.size() < kCableBytes) throw Error("a sound cable needs {} bytes, got {}", kCableBytes, region.size());
    std::fill(region.begin(), region.end(), std::uint8_t{0});
    auto* header = new (region.data()) CableHeader{};
    header->magic = CableHeader::kMagic;
    header->version = CableHeader::kVersion;
    header->rate = format.rate;
    header->channels = format.channels;
    header->ring_bytes = kCableRingBytes;
}

CableEnd::CableEnd(std::span<std::uint8_t> region, const PcmFormat& format)
    : header_(header_of(region)),
      ring_(region.subspan(kCableHeaderBytes, kCableRingBytes)),
      format_(format),
      max_backlog_(backlog_limit(format, kCableRingBytes)) {}

CableReader::CableReader(std::span<std::uint8_t> region)
    : CableEnd(region, PcmFormat{.channels = header_of(region).channels, .rate = header_of(region).rate}) {}

void CableReader::start() {
    debt_ = 0;
    empty_reads_ = 0;
    read_ = header_.written.load(std::memory_order_acquire);
    header_.read.store(read_, std::memory_order_release);
    header_.capturing.store(1, std::memory_order_release);
}

void CableReader::stop() { header_.capturing.store(0, std::memory_order_release); }

CableReader::Result CableReader::read(std::span<std::uint8_t> out) {
    Result r;
    const std::uint64_t frame = format_.frame_bytes();
    const std::uint64_t written = header_.written.load(std::memory_order_acquire);
    std::uint64_t waiting = written - read_;
    r.backlog = waiting;
    if (waiting > ring_.size()) {
        // More than the ring holds (or a count that went backwards): the
        // peer lied. Start again from its position.
        r.skipped = std::size_t(std::min<std::uint64_t>(waiting, SIZE_MAX));
        read_ = written;
        waiting = 0;
    } else if (waiting > max_backlog_ + out.size()) {
        // We fell behind: keep the newest sound.
        std::uint64_t skip = waiting - max_backlog_;
        skip -= skip % frame;
        r.skipped = std::size_t(skip);
        read_ += skip;
        waiting -= skip;
    }
    if (debt_ != 0 && waiting > out.size()) {
        // A late sender's sound arrived after we played silence in its
        // place: skip as much of it, keeping a read's worth.
        std::uint64_t skip = std::min<std::uint64_t>(debt_, waiting - out.size());
        skip -= skip % frame;
        r.skipped += std::size_t(skip);
        read_ += skip;
        waiting -= skip;
        debt_ -= skip;
    }
    std::size_t take = std::size_t(std::min<std::uint64_t>(waiting, out.size()));
    take -= take % frame;
    ring_copy_out(ring_, read_, out.first(take));
    std::fill(out.begin() + take, out.end(), std::uint8_t{0});
    read_ += take;
    if (take == out.size()) {
        empty_reads_ = 0;
    } else {
        empty_reads_ = take == 0 ? empty_reads_ + 1 : 0;
        // At most two reads' worth: more is an idle sender, not a late one.
        debt_ = empty_reads_ > kIdleReads ? 0 : std::min<std::uint64_t>(debt_ + out.size() - take, 2 * out.size());
    }
    header_.read.store(read_, std::memory_order_release);
    r.captured = take;
    r.silence = out.size() - take;
    return r;
}

namespace {

// The format a peer's cable header says, checked once: the peer may change
// the header later; the writer keeps what was checked here.
PcmFormat checked_peer_format(std::span<std::uint8_t> region) {
    if (region.size() < kCableBytes) throw Error("the peer's sound cable is {} bytes, not {}", region.size(), kCableBytes);
    const CableHeader& header = header_of(region);
    const std::uint32_t magic = header.magic, version = header.version, rate = header.rate, channels = header.channels;
    const std::uint64_t ring_bytes = header.ring_bytes;
    if (magic != CableHeader::kMagic || version != CableHeader::kVersion)
        throw Error("the peer's sound cable has magic {:#x} version {}, not {:#x} version {}", magic, version,
                    CableHeader::kMagic, CableHeader::kVersion);
    if (ring_bytes != kCableRingBytes) throw Error("the peer's sound cable ring is {} bytes, not {}", ring_bytes, kCableRingBytes);
    if ((rate != 44100 && rate != 48000) || channels < 1 || channels > 2)
        throw Error("the peer's sound cable carries {} Hz, {} channels: not a format xover offers", rate, channels);
    return PcmFormat{.channels = channels, .rate = rate};
}

}  // namespace

CableWriter::CableWriter(std::span<std::uint8_t> region)
    : CableEnd(region, checked_peer_format(region)), written_(header_.written.load(std::memory_order_acquire)) {}

CableWriter::Result CableWriter::write(std::span<const std::uint8_t> period) {
    Result r;
    const std::uint64_t frame = format_.frame_bytes();
    std::size_t length = period.size() - period.size() % frame;
    if (header_.capturing.load(std::memory_order_acquire) == 0) {
        r.dropped = period.size();
        return r;
    }
    // The consumer's count, bounded: one that is ahead of ours or more
    // than a ring behind is a lie, and the wire counts as full.
    const std::uint64_t read = header_.read.load(std::memory_order_acquire);
    const std::uint64_t waiting = written_ - read;
    std::uint64_t room = waiting <= max_backlog_ ? max_backlog_ - waiting : 0;
    std::size_t take = std::size_t(std::min<std::uint64_t>(room, length));
    take -= take % frame;
    ring_copy_in(ring_, written_, period.first(take));
    written_ += take;
    header_.written.store(written_, std::memory_order_release);
    r.written = take;
    r.dropped = period.size() - take;
    return r;
}

}  // namespace xover::sound
