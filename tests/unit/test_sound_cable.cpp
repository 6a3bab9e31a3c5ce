// The sound crossover's cable (sound/cable.hpp): what one card plays comes
// out of the other's capture, silence when nothing was played, sound
// played while nobody captures is dropped, a receiver that falls behind
// skips to the newest sound, and a lying peer gets nothing outside the ring.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "xover/sound/cable.hpp"

using namespace xover::sound;

namespace {

struct Wire {
    explicit Wire(PcmFormat format = {.channels = 2, .rate = 48000}) : region(kCableBytes + 64, 0xee) {
        CableReader::initialize(std::span(region).first(kCableBytes), format);
        reader.emplace(std::span(region).first(kCableBytes));
        writer.emplace(std::span(region).first(kCableBytes));
    }
    CableHeader& header() { return *reinterpret_cast<CableHeader*>(region.data()); }
    std::vector<std::uint8_t> region;
    std::optional<CableReader> reader;
    std::optional<CableWriter> writer;
};

std::vector<std::uint8_t> period(std::size_t n, std::uint8_t seed) {
    std::vector<std::uint8_t> p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = std::uint8_t(seed + i);
    return p;
}

}  // namespace

TEST_CASE("cable: what is played is captured, in order, across the ring's wrap", "[sound][cable]") {
    Wire w;
    w.reader->start();
    std::vector<std::uint8_t> out(1920);
    for (int i = 0; i < 200; ++i) {  // ~6 rings
        auto p = period(1920, std::uint8_t(i));
        auto wr = w.writer->write(p);
        REQUIRE(wr.written == 1920);
        REQUIRE(wr.dropped == 0);
        auto rr = w.reader->read(out);
        REQUIRE(rr.captured == 1920);
        REQUIRE(rr.silence == 0);
        REQUIRE(rr.backlog == 1920);
        REQUIRE(out == p);
    }
    // The bytes after the region are never touched.
    for (std::size_t i = kCableBytes; i < w.region.size(); ++i) REQUIRE(w.region[i] == 0xee);
}

TEST_CASE("cable: silence when nothing was played, part silence when part was", "[sound][cable]") {
    Wire w;
    w.reader->start();
    std::vector<std::uint8_t> out(1920, 0x55);
    auto r = w.reader->read(out);
    CHECK(r.captured == 0);
    CHECK(r.silence == 1920);
    CHECK(std::all_of(out.begin(), out.end(), [](auto b) { return b == 0; }));
    w.writer->write(period(960, 1));
    r = w.reader->read(out);
    CHECK(r.captured == 960);
    CHECK(std::vector(out.begin(), out.begin() + 960) == period(960, 1));
    CHECK(std::all_of(out.begin() + 960, out.end(), [](auto b) { return b == 0; }));
}

TEST_CASE("cable: played while the other side does not capture is gone", "[sound][cable]") {
    Wire w;
    auto r = w.writer->write(period(1920, 1));  // not capturing yet
    CHECK(r.written == 0);
    CHECK(r.dropped == 1920);
    w.reader->start();
    w.writer->write(period(1920, 2));
    w.reader->stop();
    w.writer->write(period(1920, 3));  // dropped
    w.reader->start();                 // what waited is from before: skipped
    std::vector<std::uint8_t> out(1920);
    CHECK(w.reader->read(out).captured == 0);
    w.writer->write(period(1920, 4));
    CHECK(w.reader->read(out).captured == 1920);
    CHECK(out == period(1920, 4));
}

TEST_CASE("cable: a receiver that falls behind keeps the newest sound", "[sound][cable]") {
    Wire w;  // 48 kHz stereo: 100 ms = 19200 bytes
    w.reader->start();
    std::size_t written = 0, dropped = 0;
    for (int i = 0; i < 20; ++i) {  // 200 ms played, nothing read
        auto r = w.writer->write(period(1920, std::uint8_t(i)));
        written += r.written;
        dropped += r.dropped;
    }
    CHECK(written == 19200);  // the writer stops at the backlog limit
    CHECK(dropped == 20 * 1920 - 19200);
    std::vector<std::uint8_t> out(1920);
    auto r = w.reader->read(out);
    CHECK(r.backlog == 19200);
    CHECK(r.captured == 1920);
    CHECK(out == period(1920, 0));
}

TEST_CASE("cable: lying peers", "[sound][cable]") {
    Wire w;
    w.reader->start();
    std::vector<std::uint8_t> out(1920);
    SECTION("a written count far ahead: the reader resynchronises") {
        w.header().written.store(1ull << 40);
        auto r = w.reader->read(out);
        CHECK(r.captured == 0);
        CHECK(r.skipped > 0);
        w.header().written.store((1ull << 40) + 1920);
        CHECK(w.reader->read(out).captured == 1920);
    }
    SECTION("a written count that went backwards") {
        w.writer->write(period(1920, 1));
        w.reader->read(out);
        w.header().written.store(5);
        auto r = w.reader->read(out);
        CHECK(r.captured == 0);
        CHECK(r.silence == 1920);
    }
    SECTION("a read count ahead of the writer: the wire counts as full") {
        w.header().read.store(1ull << 50);
        auto r = w.writer->write(period(1920, 1));
        CHECK(r.written == 0);
        CHECK(r.dropped == 1920);
    }
    SECTION("an odd count: only whole frames are taken") {
        w.writer->write(period(1920, 1));
        w.header().written.store(1923);
        auto r = w.reader->read(out);
        CHECK(r.captured % 4 == 0);
    }
}

TEST_CASE("cable: the writer checks the peer's header once", "[sound][cable]") {
    std::vector<std::uint8_t> region(kCableBytes);
    CHECK_THROWS_WITH(CableWriter(std::span(region)), Catch::Contains("magic"));
    CableReader::initialize(region, {.channels = 1, .rate = 44100});
    CHECK(CableWriter(std::span(region)).format() == PcmFormat{.channels = 1, .rate = 44100});
    reinterpret_cast<CableHeader*>(region.data())->rate = 8000;
    CHECK_THROWS_WITH(CableWriter(std::span(region)), Catch::Contains("8000 Hz"));
    CableReader::initialize(region, {.channels = 2, .rate = 48000});
    reinterpret_cast<CableHeader*>(region.data())->ring_bytes = 1 << 30;
    CHECK_THROWS_WITH(CableWriter(std::span(region)), Catch::Contains("ring"));
    CHECK_THROWS_WITH(CableWriter(std::span(region).first(100)), Catch::Contains("100 bytes"));
}

TEST_CASE("cable: mono 44.1 kHz frames", "[sound][cable]") {
    Wire w({.channels = 1, .rate = 44100});
    w.reader->start();
    std::vector<std::uint8_t> out(882);
    auto r = w.writer->write(period(883, 1));  // half a frame too many: dropped
    CHECK(r.written == 882);
    CHECK(w.reader->read(out).captured == 882);
}

TEST_CASE("cable: a sender late once does not add a period of latency for good", "[sound][cable]") {
    Wire w;
    w.reader->start();
    std::vector<std::uint8_t> out(1920);
    w.writer->write(period(1920, 1));
    CHECK(w.reader->read(out).captured == 1920);
    // The sender's next period lands just after the receiver's read...
    auto r = w.reader->read(out);
    CHECK(r.silence == 1920);
    w.writer->write(period(1920, 2));  // late
    w.writer->write(period(1920, 3));  // on time
    // ...so two wait at the next read: the late one's time has passed.
    r = w.reader->read(out);
    CHECK(r.skipped == 1920);
    CHECK(r.captured == 1920);
    CHECK(out == period(1920, 3));
    // And the latency is back to one period: nothing more waits.
    w.writer->write(period(1920, 4));
    r = w.reader->read(out);
    CHECK(r.backlog == 1920);
    CHECK(out == period(1920, 4));
}

TEST_CASE("cable: an idle sender leaves no debt, its first sound is heard", "[sound][cable]") {
    Wire w;
    w.reader->start();
    std::vector<std::uint8_t> out(960);
    for (int i = 0; i < 10; ++i) CHECK(w.reader->read(out).silence == 960);
    w.writer->write(period(1920, 7));  // a sender with twice our period starts
    auto r = w.reader->read(out);
    CHECK(r.skipped == 0);
    CHECK(r.captured == 960);
    CHECK(w.reader->read(out).captured == 960);
}
