// Sound backends as the device sees them: start/stop, play, capture,
// plugged jacks and counters (the WAV format itself: test_sound_wav.cpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
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
constexpr PcmFormat kStereo44k{.channels = 2, .rate = 44100};
constexpr PcmFormat kMono48k{.channels = 1, .rate = 48000};

Bytes pattern(std::size_t size, std::uint8_t seed = 1) {
    Bytes b(size);
    for (std::size_t i = 0; i < size; ++i) b[i] = std::uint8_t(seed + i * 3);
    return b;
}

// A wav backend whose input is an S16_LE file of `format` holding `frames`
// (written by another wav backend: the writer's format is the reader's).
struct WavInput {
    xover::test::TempDir dir{"xover-sound-backend"};
    fs::path in = dir.path / "in.wav";
    fs::path out = dir.path / "out.wav";

    WavInput(const PcmFormat& format, const Bytes& frames) {
        auto writer = make_backend(WavSpec{.out = in, .in = {}});
        REQUIRE(writer->start(Direction::Output, format));
        writer->play(frames);
    }
    std::unique_ptr<Backend> open() { return make_backend(WavSpec{.out = out, .in = in}); }
};

}  // namespace

TEST_CASE("none backend: plays into nothing, captures silence, nothing plugged", "[sound][none]") {
    auto backend = make_backend(NoneSpec{});
    CHECK(backend->start(Direction::Output, kStereo48k));
    CHECK(backend->start(Direction::Input, kMono48k));
    backend->play(pattern(64));
    Bytes period(64, 0xAA);
    backend->capture(period);
    CHECK(period == Bytes(64, 0));
    CHECK_FALSE(backend->plugged(Direction::Output));
    CHECK_FALSE(backend->plugged(Direction::Input));
    backend->stop(Direction::Output);
    backend->stop(Direction::Input);
    CHECK(backend->counters().empty());
}

TEST_CASE("wav backend: capture reads the input file, then silence after its end", "[sound][wav]") {
    const Bytes frames = pattern(40);
    WavInput files(kStereo48k, frames);
    auto backend = files.open();
    CHECK(backend->plugged(Direction::Output));
    CHECK(backend->plugged(Direction::Input));

    REQUIRE(backend->start(Direction::Input, kStereo48k));
    Bytes period(32, 0xAA);
    backend->capture(period);
    CHECK(period == Bytes(frames.begin(), frames.begin() + 32));
    backend->capture(period);  // 8 bytes left, then silence
    Bytes tail(frames.begin() + 32, frames.end());
    tail.resize(32, 0);
    CHECK(period == tail);
    std::fill(period.begin(), period.end(), std::uint8_t{0xAA});
    backend->capture(period);
    CHECK(period == Bytes(32, 0));

    CHECK(counter(*backend, "wav_captured_bytes") == 40);
    CHECK(counter(*backend, "wav_silence_bytes") == 24 + 32);
    // The jack stays plugged after the end: the file is still there.
    CHECK(backend->plugged(Direction::Input));
}

TEST_CASE("wav backend: a stopped and restarted capture continues where it was", "[sound][wav]") {
    const Bytes frames = pattern(24);
    WavInput files(kMono48k, frames);
    auto backend = files.open();
    REQUIRE(backend->start(Direction::Input, kMono48k));
    Bytes period(8);
    backend->capture(period);
    CHECK(period == Bytes(frames.begin(), frames.begin() + 8));
    backend->stop(Direction::Input);

    // Stopped: silence, and the file does not advance.
    backend->capture(period);
    CHECK(period == Bytes(8, 0));

    REQUIRE(backend->start(Direction::Input, kMono48k));
    backend->capture(period);
    CHECK(period == Bytes(frames.begin() + 8, frames.begin() + 16));
}

TEST_CASE("wav backend: an input start in another format is refused (no resampling)", "[sound][wav]") {
    const Bytes frames = pattern(16);
    WavInput files(kStereo48k, frames);
    auto backend = files.open();
    CHECK_FALSE(backend->start(Direction::Input, kStereo44k));  // another rate
    CHECK_FALSE(backend->start(Direction::Input, PcmFormat{.channels = 1, .rate = 48000}));  // other channels
    CHECK(counter(*backend, "wav_refused_starts") == 2);
    // The refused run captures silence and does not consume the file.
    Bytes period(16, 0xAA);
    backend->capture(period);
    CHECK(period == Bytes(16, 0));
    REQUIRE(backend->start(Direction::Input, kStereo48k));
    backend->capture(period);
    CHECK(period == frames);
}

TEST_CASE("wav backend: without an input file capture is silence and the input jack is empty", "[sound][wav]") {
    xover::test::TempDir dir("xover-sound-backend");
    auto backend = make_backend(WavSpec{.out = dir.path / "out.wav", .in = {}});
    CHECK(backend->plugged(Direction::Output));
    CHECK_FALSE(backend->plugged(Direction::Input));
    CHECK(backend->start(Direction::Input, kStereo44k));  // any format: silence has them all
    Bytes period(32, 0xAA);
    backend->capture(period);
    CHECK(period == Bytes(32, 0));
    CHECK(counter(*backend, "wav_captured_bytes") == 0);
    CHECK(counter(*backend, "wav_silence_bytes") == 32);
}

TEST_CASE("wav backend: play appends exactly the periods given, across stop and start", "[sound][wav]") {
    xover::test::TempDir dir("xover-sound-backend");
    const fs::path out = dir.path / "out.wav";
    auto backend = make_backend(WavSpec{.out = out, .in = {}});
    REQUIRE(backend->start(Direction::Output, kStereo48k));
    backend->play(pattern(16, 1));
    backend->stop(Direction::Output);
    backend->play(pattern(16, 2));  // stopped: not written
    REQUIRE(backend->start(Direction::Output, kStereo48k));
    backend->play(pattern(8, 3));

    Bytes expected = pattern(16, 1);
    Bytes third = pattern(8, 3);
    expected.insert(expected.end(), third.begin(), third.end());
    Bytes file = read_file(out);
    REQUIRE(file.size() == 44 + expected.size());
    CHECK(Bytes(file.begin() + 44, file.end()) == expected);
    CHECK(counter(*backend, "wav_played_bytes") == 24);
    CHECK(counter(*backend, "wav_dropped_bytes") == 16);
}

TEST_CASE("wav backend: counters are named once, with the wav_ prefix", "[sound][wav]") {
    xover::test::TempDir dir("xover-sound-backend");
    auto backend = make_backend(WavSpec{.out = dir.path / "out.wav", .in = {}});
    std::vector<std::string> names;
    for (auto& [name, value] : backend->counters()) {
        names.push_back(name);
        CHECK(value == 0);
    }
    CHECK(names == std::vector<std::string>{"wav_played_bytes", "wav_dropped_bytes", "wav_captured_bytes",
                                            "wav_silence_bytes", "wav_refused_starts"});
}

TEST_CASE("make_backend builds what the spec names", "[sound]") {
    xover::test::TempDir dir("xover-sound-backend");
    CHECK_FALSE(make_backend(parse_backend_spec("none"))->plugged(Direction::Output));
    const std::string spec = "wav:" + (dir.path / "x.wav").string();
    CHECK(make_backend(parse_backend_spec(spec))->plugged(Direction::Output));
    CHECK(fs::exists(dir.path / "x.wav"));
    CHECK_THROWS_AS(make_backend(parse_backend_spec(spec + ",in=" + (dir.path / "missing.wav").string())),
                    xover::Error);
}
