// The sound crossover's cable: one direction of a wire from a card's
// output (headphone) in one VM to a card's input (microphone) in another,
// through a small shared memory region that only those two cards see — no
// socket, no host audio stack, and no guest RAM shared.
//
// The region belongs to the receiving card (its "inbox"); the broker hands
// a duplicate of its memfd to the peer, whose output writes into it. It is
// a single-producer single-consumer byte ring of S16_LE frames:
//
//   offset 0      CableHeader (below)
//   kHeaderBytes  the ring, ring_bytes long (a multiple of every frame size)
//
// field       written by               read by
// magic ... ring_bytes   the owner, once, before the memfd leaves it
// written     the producer (release)    the consumer (acquire)
// read        the consumer (release)    the producer (acquire)
// capturing   the consumer              the producer
//
// Each side writes only its own fields, and reads the other's once per
// call and bounds it: a peer that writes nonsense gets silence or dropped
// periods, never an access outside the ring.
//
// Like a cable, the wire does not store sound for later: while the
// receiving card is not capturing, what the sender plays is dropped (and
// counted); when it starts capturing it hears what is played from then
// on; and the ring never holds more than kMaxBacklog of sound, so a
// receiver that falls behind loses the oldest sound instead of lagging.
// The two cards keep time with two timers, so a sender's period can land
// just after the receiver's read: that read gets silence, and without
// care the period would then wait one read longer for good, each such
// miss adding a period of latency (measured: 8 ms growing to 38 ms in
// 10 s on a busy host). So the reader keeps the silence it gave for a
// late sender as a debt and, once more than a read's worth waits, skips
// that much: the late sound is dropped, as its time has passed, and the
// latency falls back to the phase between the two timers. A sender that
// is merely idle (several empty reads in a row) leaves no debt.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "xover/sound/pcm_format.hpp"

namespace xover::sound {

struct CableHeader {
    static constexpr std::uint32_t kMagic = 0x444e5358;  // "XSND" little-endian
    static constexpr std::uint32_t kVersion = 1;
    std::uint32_t magic;
    std::uint32_t version;
    std::uint32_t rate;
    std::uint32_t channels;
    std::uint64_t ring_bytes;
    alignas(64) std::atomic<std::uint64_t> written;  // bytes ever written
    alignas(64) std::atomic<std::uint64_t> read;     // bytes ever read (or skipped)
    std::atomic<std::uint32_t> capturing;            // 1 while the owner's input runs
};

inline constexpr std::size_t kCableHeaderBytes = 4096;
inline constexpr std::size_t kCableRingBytes = 64 * 1024;  // 341 ms of 48 kHz stereo
inline constexpr std::size_t kCableBytes = kCableHeaderBytes + kCableRingBytes;
// The most sound the wire holds: a receiver this far behind skips ahead.
inline constexpr std::chrono::milliseconds kCableMaxBacklog{100};
static_assert(sizeof(CableHeader) <= kCableHeaderBytes);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// What both ends hold of a cable: its header, its ring, the format it
// carries (as checked when the end was made) and the backlog limit.
class CableEnd {
public:
    PcmFormat format() const { return format_; }

protected:
    // `region` is at least kCableBytes; `format` is what its header says.
    CableEnd(std::span<std::uint8_t> region, const PcmFormat& format);

    CableHeader& header_;
    std::span<std::uint8_t> ring_;
    PcmFormat format_;
    std::uint64_t max_backlog_;
};

// The owner's end: initialises its inbox and captures from it.
class CableReader : public CableEnd {
public:
    // Writes a fresh header for `format` into `region` (kCableBytes).
    static void initialize(std::span<std::uint8_t> region, const PcmFormat& format);

    // `region` was initialized by this process (its header is trusted).
    explicit CableReader(std::span<std::uint8_t> region);

    // The input stream starts: what waits in the ring is from before and
    // is skipped; the producer may write from now on.
    void start();
    void stop();

    struct Result {
        std::size_t captured = 0;  // bytes that came from the peer
        std::size_t silence = 0;   // bytes of silence: nothing had arrived
        std::size_t skipped = 0;   // bytes skipped: more than kCableMaxBacklog waited, or the peer lied
        std::uint64_t backlog = 0; // bytes that waited when the read began
    };
    // Fills `out` (whole frames) with the next bytes, silence for the rest.
    Result read(std::span<std::uint8_t> out);

private:
    std::uint64_t read_ = 0;  // our own count (the shared one is only published)
    std::uint64_t debt_ = 0;  // silence given for a late sender, to skip when its sound comes
    unsigned empty_reads_ = 0;
    // Empty reads in a row after which the sender counts as idle, not late.
    static constexpr unsigned kIdleReads = 4;
};

// The peer's end: plays into another card's inbox.
class CableWriter : public CableEnd {
public:
    // `region` came from the peer (at least kCableBytes): its header is
    // checked once. Throws xover::Error naming what is wrong.
    explicit CableWriter(std::span<std::uint8_t> region);

    struct Result {
        std::size_t written = 0;
        std::size_t dropped = 0;  // the receiver was not capturing, or was too far behind
    };
    Result write(std::span<const std::uint8_t> period);

private:
    std::uint64_t written_ = 0;  // our own count (the shared one is only published)
};

}  // namespace xover::sound
