// WAV files through the wav backend (sound/wav_file.hpp is private to the
// sound module, so its reader and writer are driven the way the device
// drives them): what the writer leaves on disk at any instant, a SIGKILLed
// writer included, and what the reader makes of files other programs and
// hostile users write: odd chunks, lying sizes, formats it cannot play.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "byte_files.hpp"
#include "counters.hpp"
#include "temp_dir.hpp"
#include "xover/error.hpp"
#include "xover/sound/backend.hpp"

using namespace xover::sound;
using namespace xover::test;
namespace fs = std::filesystem;

namespace {

constexpr PcmFormat kStereo48k{.channels = 2, .rate = 48000};
constexpr PcmFormat kMono44k{.channels = 1, .rate = 44100};

void put_le(Bytes& out, std::uint64_t value, int width) {
    for (int i = 0; i < width; ++i) out.push_back(std::uint8_t(value >> (8 * i)));
}
std::uint32_t get_le32(const Bytes& b, std::size_t at) {
    return b[at] | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 | std::uint32_t(b[at + 3]) << 24;
}
std::uint16_t get_le16(const Bytes& b, std::size_t at) { return std::uint16_t(b[at] | b[at + 1] << 8); }

// One chunk: id, declared size (the body's unless a lie is wanted), body,
// pad byte after an odd body.
Bytes chunk(std::string_view id, const Bytes& body, std::optional<std::uint32_t> declared = {}) {
    Bytes out(id.begin(), id.end());
    put_le(out, declared.value_or(std::uint32_t(body.size())), 4);
    out.insert(out.end(), body.begin(), body.end());
    if (body.size() % 2) out.push_back(0);
    return out;
}

// A plain fmt chunk's body; block align and byte rate follow from the rest
// unless given.
Bytes fmt_body(std::uint16_t tag, std::uint16_t channels, std::uint32_t rate, std::uint16_t bits,
               std::optional<std::uint16_t> block_align = {}) {
    std::uint16_t align = block_align.value_or(std::uint16_t(channels * bits / 8));
    Bytes b;
    put_le(b, tag, 2);
    put_le(b, channels, 2);
    put_le(b, rate, 4);
    put_le(b, std::uint64_t(rate) * align, 4);
    put_le(b, align, 2);
    put_le(b, bits, 2);
    return b;
}

// WAVE_FORMAT_EXTENSIBLE with the subformat GUID of plain format `subtag`.
Bytes extensible_body(std::uint16_t channels, std::uint32_t rate, std::uint16_t bits, std::uint16_t subtag,
                      std::uint8_t guid_last_byte = 0x71) {
    Bytes b = fmt_body(0xFFFE, channels, rate, bits);
    put_le(b, 22, 2);    // cbSize
    put_le(b, bits, 2);  // valid bits
    put_le(b, 3, 4);     // channel mask: front left, front right
    put_le(b, subtag, 2);
    for (std::uint8_t x : {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B})
        b.push_back(x);
    b.push_back(guid_last_byte);
    return b;
}

// "RIFF" size "WAVE" chunks...; the RIFF size is the true one unless given.
Bytes riff(const std::vector<Bytes>& chunks, std::optional<std::uint32_t> declared = {}) {
    Bytes body{'W', 'A', 'V', 'E'};
    for (const Bytes& c : chunks) body.insert(body.end(), c.begin(), c.end());
    Bytes out{'R', 'I', 'F', 'F'};
    put_le(out, declared.value_or(std::uint32_t(body.size())), 4);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// `size` bytes no two periods of a test share (frame-aligned data keeps
// its pattern when split into periods).
Bytes pattern(std::size_t size, std::uint8_t seed = 1) {
    Bytes b(size);
    for (std::size_t i = 0; i < size; ++i) b[i] = std::uint8_t(seed * 31 + i * 7 + (i >> 8));
    return b;
}
Bytes concat(const Bytes& a, const Bytes& b) {
    Bytes out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

// Scratch files for one test: `image` becomes in.wav, read through a wav
// backend (whose output is out.wav).
struct WavFiles {
    xover::test::TempDir dir{"xover-sound-wav"};
    fs::path in() const { return dir.path / "in.wav"; }
    fs::path out() const { return dir.path / "out.wav"; }

    std::unique_ptr<Backend> open(const Bytes& image) {
        write_file(in(), image);
        return make_backend(WavSpec{.out = out(), .in = in()});
    }
    // The message opening `image` is refused with.
    std::string refusal(const Bytes& image) {
        try {
            open(image);
        } catch (const xover::Error& e) {
            return e.what();
        }
        return "(accepted)";
    }
    // Everything `image` holds as `format`, captured in one period of
    // `size` bytes (zeros past the end).
    Bytes capture(const Bytes& image, const PcmFormat& format, std::size_t size) {
        auto backend = open(image);
        REQUIRE(backend->start(Direction::Input, format));
        Bytes period(size, 0xEE);
        backend->capture(period);
        return period;
    }
};

Bytes zeros(std::size_t n) { return Bytes(n, 0); }

}  // namespace

TEST_CASE("wav: what is played is read back bit-exactly, a capture->playback loop copies the file", "[sound][wav]") {
    WavFiles f;
    const fs::path first = f.dir.path / "first.wav";
    const fs::path copy = f.dir.path / "copy.wav";
    // Periods of several sizes, all whole mono frames.
    const std::vector<Bytes> periods = {pattern(882, 1), pattern(2, 2), pattern(1000, 3), pattern(4410, 4)};
    Bytes all;
    {
        auto out = make_backend(WavSpec{.out = first, .in = {}});
        REQUIRE(out->start(Direction::Output, kMono44k));
        for (const Bytes& p : periods) {
            out->play(p);
            all.insert(all.end(), p.begin(), p.end());
        }
        CHECK(counter(*out, "wav_played_bytes") == all.size());
        CHECK(counter(*out, "wav_dropped_bytes") == 0);
    }
    Bytes written = read_file(first);
    REQUIRE(written.size() == 44 + all.size());
    CHECK(Bytes(written.begin() + 44, written.end()) == all);

    // The guest captures first.wav and plays what it captured into copy.wav.
    auto loop = make_backend(WavSpec{.out = copy, .in = first});
    CHECK(loop->capture_waits_for_guest());  // so the device never reads past what the guest takes
    REQUIRE(loop->start(Direction::Input, kMono44k));
    REQUIRE(loop->start(Direction::Output, kMono44k));
    for (const Bytes& p : periods) {
        Bytes period(p.size());
        loop->capture(period);
        CHECK(period == p);
        loop->play(period);
    }
    loop.reset();
    CHECK(read_file(copy) == written);
}

TEST_CASE("wav: the writer's header fields", "[sound][wav]") {
    WavFiles f;
    auto out = make_backend(WavSpec{.out = f.out(), .in = {}});
    // Created at make time, written at the first start.
    REQUIRE(fs::exists(f.out()));
    CHECK(fs::file_size(f.out()) == 0);
    REQUIRE(out->start(Direction::Output, PcmFormat{.channels = 6, .rate = 96000}));
    out->play(pattern(12 * 100));

    // Checked while the backend is still open: the header is true after
    // every period, not only at close.
    Bytes h = read_file(f.out());
    REQUIRE(h.size() == 44 + 1200);
    CHECK(std::string(h.begin(), h.begin() + 4) == "RIFF");
    CHECK(get_le32(h, 4) == 36 + 1200);
    CHECK(std::string(h.begin() + 8, h.begin() + 16) == "WAVEfmt ");
    CHECK(get_le32(h, 16) == 16);
    CHECK(get_le16(h, 20) == 1);  // PCM
    CHECK(get_le16(h, 22) == 6);
    CHECK(get_le32(h, 24) == 96000);
    CHECK(get_le32(h, 28) == 96000 * 12);
    CHECK(get_le16(h, 32) == 12);
    CHECK(get_le16(h, 34) == 16);
    CHECK(std::string(h.begin() + 36, h.begin() + 40) == "data");
    CHECK(get_le32(h, 40) == 1200);

    out->play(pattern(12));
    CHECK(get_le32(read_file(f.out()), 40) == 1212);
}

TEST_CASE("wav: an output never started is closed as a valid empty WAV file", "[sound][wav]") {
    WavFiles f;
    make_backend(WavSpec{.out = f.out(), .in = {}}).reset();
    Bytes h = read_file(f.out());
    REQUIRE(h.size() == 44);
    CHECK(get_le32(h, 40) == 0);
    // ... which the reader takes (as PcmFormat{}: 2 channels, 48 kHz).
    fs::rename(f.out(), f.in());
    auto in = make_backend(WavSpec{.out = f.out(), .in = f.in()});
    CHECK(in->start(Direction::Input, kStereo48k));
}

TEST_CASE("wav: only whole frames are written, the output holds one format", "[sound][wav]") {
    WavFiles f;
    auto out = make_backend(WavSpec{.out = f.out(), .in = {}});
    out->play(pattern(8));  // not started: dropped
    REQUIRE(out->start(Direction::Output, kStereo48k));
    out->play(pattern(7));  // one frame and 3 bytes
    CHECK(counter(*out, "wav_played_bytes") == 4);
    CHECK(counter(*out, "wav_dropped_bytes") == 8 + 3);

    out->stop(Direction::Output);
    CHECK_FALSE(out->start(Direction::Output, kMono44k));
    CHECK(counter(*out, "wav_refused_starts") == 1);
    out->play(pattern(4));  // the refused run: dropped
    CHECK(counter(*out, "wav_dropped_bytes") == 8 + 3 + 4);
    CHECK(out->start(Direction::Output, kStereo48k));  // the file's format again
    out->play(pattern(4, 9));
    CHECK(counter(*out, "wav_played_bytes") == 8);
    CHECK(fs::file_size(f.out()) == 44 + 8);
    // A format no WAV file of ours holds, on a fresh output.
    auto other = make_backend(WavSpec{.out = f.dir.path / "other.wav", .in = {}});
    CHECK_FALSE(other->start(Direction::Output, PcmFormat{.channels = 0, .rate = 48000}));
    CHECK(other->start(Direction::Output, kMono44k));
}

TEST_CASE("wav: a writer killed with SIGKILL leaves a readable file", "[sound][wav]") {
    WavFiles f;
    const Bytes played = concat(pattern(960, 1), pattern(960, 2));
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        auto out = make_backend(WavSpec{.out = f.in(), .in = {}});
        out->start(Direction::Output, kStereo48k);
        out->play(pattern(960, 1));
        out->play(pattern(960, 2));
        ::kill(::getpid(), SIGKILL);  // no destructor, no close
        ::_exit(1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    auto in = make_backend(WavSpec{.out = f.out(), .in = f.in()});
    REQUIRE(in->start(Direction::Input, kStereo48k));
    Bytes period(played.size() + 8);
    in->capture(period);
    CHECK(period == concat(played, zeros(8)));
}

TEST_CASE("wav: files of crashed writers: data size 0 or 0xFFFFFFFF reads to the end", "[sound][wav]") {
    WavFiles f;
    const Bytes frames = pattern(400);
    const Bytes fmt = chunk("fmt ", fmt_body(1, 2, 48000, 16));
    // The header a streaming writer wrote first: RIFF 36, data 0, never updated.
    Bytes zero_sizes = concat(riff({fmt, chunk("data", {}, 0)}), frames);
    CHECK(f.capture(zero_sizes, kStereo48k, 404) == concat(frames, zeros(4)));
    // RIFF size 0 too.
    Bytes riff_zero = concat(riff({fmt, chunk("data", {}, 0)}, 0), frames);
    CHECK(f.capture(riff_zero, kStereo48k, 404) == concat(frames, zeros(4)));
    // Both 0xFFFFFFFF (a pipe's writer cannot seek back).
    Bytes max_sizes = concat(riff({fmt, chunk("data", {}, 0xFFFFFFFF)}, 0xFFFFFFFF), frames);
    CHECK(f.capture(max_sizes, kStereo48k, 404) == concat(frames, zeros(4)));
    // A data size past the end of the file is clamped to it; a partial
    // last frame is not played.
    Bytes long_claim = concat(riff({fmt, chunk("data", {}, 100000)}), concat(frames, Bytes{1, 2, 3}));
    CHECK(f.capture(long_claim, kStereo48k, 408) == concat(frames, zeros(8)));
}

TEST_CASE("wav: an empty data chunk followed by other chunks stays empty", "[sound][wav]") {
    WavFiles f;
    Bytes image = riff({chunk("fmt ", fmt_body(1, 1, 8000, 16)), chunk("data", {}), chunk("LIST", pattern(30))});
    auto backend = f.open(image);
    REQUIRE(backend->start(Direction::Input, PcmFormat{.channels = 1, .rate = 8000}));
    Bytes period(16, 0xEE);
    backend->capture(period);
    CHECK(period == zeros(16));
    CHECK(counter(*backend, "wav_captured_bytes") == 0);
}

TEST_CASE("wav: unknown chunks are skipped, odd ones with their pad byte", "[sound][wav]") {
    WavFiles f;
    const Bytes frames = pattern(40);
    const Bytes fmt = chunk("fmt ", fmt_body(1, 2, 48000, 16));
    // LIST of 5 bytes (+1 pad) before fmt, "junk" of 3 between fmt and data,
    // another LIST after the data.
    Bytes image = riff({chunk("LIST", pattern(5, 7)), fmt, chunk("junk", pattern(3, 8)), chunk("data", frames),
                        chunk("LIST", pattern(9, 9))});
    CHECK(f.capture(image, kStereo48k, 44) == concat(frames, zeros(4)));
    // An odd data size that is not whole frames: the whole frames of it.
    Bytes odd = riff({fmt, chunk("data", pattern(11))});
    Bytes two_frames = pattern(11);
    two_frames.resize(8);
    CHECK(f.capture(odd, kStereo48k, 12) == concat(two_frames, zeros(4)));
}

TEST_CASE("wav: WAVE_FORMAT_EXTENSIBLE with a PCM subformat is read", "[sound][wav]") {
    WavFiles f;
    const Bytes frames = pattern(16);
    Bytes image = riff({chunk("fmt ", extensible_body(2, 44100, 16, 1)), chunk("data", frames)});
    CHECK(f.capture(image, PcmFormat{.channels = 2, .rate = 44100}, 16) == frames);
}

TEST_CASE("wav: files the reader refuses, and why", "[sound][wav]") {
    WavFiles f;
    const Bytes data = chunk("data", pattern(8));
    auto with_fmt = [&](const Bytes& body) { return riff({chunk("fmt ", body), data}); };
    using Catch::Contains;

    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 2, 48000, 8))), Contains("8 bits per sample"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 2, 48000, 24))), Contains("24 bits per sample"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(3, 2, 48000, 32))), Contains("IEEE float"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(7, 1, 8000, 8))), Contains("mu-law"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(6, 1, 8000, 8))), Contains("A-law"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(0x1234, 1, 8000, 16))), Contains("0x1234"));
    CHECK_THAT(f.refusal(with_fmt(extensible_body(2, 48000, 32, 3))), Contains("IEEE float"));
    CHECK_THAT(f.refusal(with_fmt(extensible_body(2, 48000, 16, 1, 0x72))), Contains("unknown subformat"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(0xFFFE, 2, 48000, 16))), Contains("extensible fmt chunk is 16 bytes"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 0, 48000, 16))), Contains("0 channels"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 9, 48000, 16))), Contains("9 channels"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 2, 0, 16))), Contains("sample rate of 0"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 2, 0x80000000, 16))), Contains("2147483648 Hz, too high"));
    CHECK_THAT(f.refusal(with_fmt(fmt_body(1, 2, 48000, 16, 2))), Contains("block align of 2"));
    Bytes short_fmt = fmt_body(1, 2, 48000, 16);
    short_fmt.resize(14);
    CHECK_THAT(f.refusal(with_fmt(short_fmt)), Contains("fmt chunk is 14 bytes"));

    const Bytes fmt = chunk("fmt ", fmt_body(1, 2, 48000, 16));
    CHECK_THAT(f.refusal(riff({data})), Contains("no fmt chunk before the data chunk"));
    CHECK_THAT(f.refusal(riff({fmt})), Contains("no data chunk"));
    CHECK_THAT(f.refusal(riff({fmt, chunk("LIST", pattern(4))})), Contains("no data chunk"));
    CHECK_THAT(f.refusal(riff({data, fmt})), Contains("no fmt chunk before the data chunk"));
    CHECK_THAT(f.refusal(riff({chunk("LIST", pattern(4))})), Contains("no fmt chunk"));
    CHECK_THAT(f.refusal(riff({fmt, fmt, data})), Contains("two fmt chunks"));
    // A chunk claiming more than the file has, before any data chunk.
    CHECK_THAT(f.refusal(riff({fmt, chunk("LIST", pattern(4), 0xFFFFFFF0), data})), Contains("no data chunk"));

    // Truncated headers, wherever the cut falls.
    const Bytes whole = riff({fmt, data});
    for (std::size_t size : {0, 4, 11, 12, 19, 20, 35, 36, 43}) {
        CAPTURE(size);
        std::string why = f.refusal(Bytes(whole.begin(), whole.begin() + std::ptrdiff_t(size)));
        CHECK_THAT(why, Contains("wav file '" + f.in().string() + "'"));
    }
    CHECK_THAT(f.refusal(Bytes(whole.begin(), whole.begin() + 30)), Contains("runs past the end"));
    Bytes rifx = whole;
    rifx[3] = 'X';
    CHECK_THAT(f.refusal(rifx), Contains("not a RIFF/WAVE file"));
    Bytes avi = whole;
    std::memcpy(&avi[8], "AVI ", 4);
    CHECK_THAT(f.refusal(avi), Contains("not a RIFF/WAVE file"));
}

TEST_CASE("wav: a file of too many chunks is refused rather than walked for minutes", "[sound][wav]") {
    WavFiles f;
    std::vector<Bytes> chunks(5000, chunk("junk", {}));
    CHECK_THAT(f.refusal(riff(chunks)), Catch::Contains("more than 4096 chunks"));
}

TEST_CASE("wav: paths that are not files are refused at make time", "[sound][wav]") {
    WavFiles f;
    using Catch::Contains;
    auto refusal = [](const WavSpec& spec) -> std::string {
        try {
            make_backend(spec);
        } catch (const xover::Error& e) {
            return e.what();
        }
        return "(accepted)";
    };
    CHECK_THAT(refusal(WavSpec{.out = f.dir.path / "no-such-dir" / "out.wav", .in = {}}),
               Contains("create: No such file or directory"));
    CHECK_THAT(refusal(WavSpec{.out = f.dir.path, .in = {}}), Contains("create"));
    CHECK_THAT(refusal(WavSpec{.out = f.out(), .in = f.dir.path / "missing.wav"}), Contains("open"));
    CHECK_THAT(refusal(WavSpec{.out = f.out(), .in = f.dir.path}), Contains("not a regular file"));
    // FIFOs: refused at once rather than waiting for the other end.
    const fs::path fifo = f.dir.path / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THAT(refusal(WavSpec{.out = f.out(), .in = fifo}), Contains("not a regular file"));
    CHECK_THAT(refusal(WavSpec{.out = fifo, .in = {}}), Contains("wav file '" + fifo.string() + "'"));
    CHECK(refusal(WavSpec{.out = "/dev/null", .in = {}}) != "(accepted)");
}

TEST_CASE("wav: the input cannot be the output (creating the output would truncate it)", "[sound][wav]") {
    WavFiles f;
    const Bytes image = riff({chunk("fmt ", fmt_body(1, 2, 48000, 16)), chunk("data", pattern(8))});
    write_file(f.in(), image);
    const fs::path link = f.dir.path / "link.wav";
    fs::create_hard_link(f.in(), link);
    for (const fs::path& out : {f.in(), link}) {
        CAPTURE(out);
        CHECK_THROWS_WITH(make_backend(WavSpec{.out = out, .in = f.in()}),
                          Catch::Contains("is both the output and the input"));
    }
    CHECK(read_file(f.in()) == image);
}

TEST_CASE("wav: random damage to a file gives an error or defined audio, never a crash", "[sound][wav]") {
    WavFiles f;
    const Bytes good = riff({chunk("LIST", pattern(7)), chunk("fmt ", extensible_body(2, 48000, 16, 1)),
                             chunk("data", pattern(64)), chunk("LIST", pattern(3))});
    std::mt19937 rng(12345);
    int opened = 0;
    for (int i = 0; i < 400; ++i) {
        Bytes image = good;
        int damage = 1 + int(rng() % 4);
        for (int d = 0; d < damage; ++d) {
            switch (rng() % 3) {
                case 0: image[rng() % image.size()] = std::uint8_t(rng()); break;  // a byte
                case 1: image.resize(rng() % image.size()); break;                  // a cut
                default:  // a size field, maybe
                    if (image.size() >= 8) image[4 + 4 * (rng() % (image.size() / 4 - 1))] ^= 0xFF;
            }
            if (image.empty()) break;
        }
        CAPTURE(i);
        std::unique_ptr<Backend> backend;
        try {
            backend = f.open(image);
        } catch (const xover::Error&) {
            continue;
        }
        ++opened;
        backend->start(Direction::Input, kStereo48k);
        Bytes period(100);
        for (int p = 0; p < 3; ++p) backend->capture(period);
        CHECK(counter(*backend, "wav_captured_bytes") + counter(*backend, "wav_silence_bytes") == 300);
    }
    CHECK(opened > 0);
}
