// virtio-snd end to end against fake memory, interrupts and a fake sound
// backend: what the device offers, the control requests and their refusals,
// the stream state machine, real-time playback and capture a period at a
// time, jack events, and what a broken driver gets.
#include <catch2/catch.hpp>

#include <linux/virtio_snd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "virtio_fakes.hpp"
#include "xover/sound/backend.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"

using namespace xover::test;
using Buf = VirtqueueBuilder::Buf;
using xover::virtio_snd::VirtioSnd;
namespace sound = xover::sound;

namespace {

class FakeSoundBackend : public sound::Backend {
public:
    bool start(sound::Direction d, const sound::PcmFormat& f) override {
        started.push_back({d, f});
        return accept;
    }
    void stop(sound::Direction d) override { stopped.push_back(d); }
    void play(std::span<const std::uint8_t> period) override { played.insert(played.end(), period.begin(), period.end()); }
    void capture(std::span<std::uint8_t> period) override {
        REQUIRE(!period.empty());  // the card never asks for nothing
        for (auto& b : period) b = next_capture++;
    }
    bool plugged(sound::Direction d) const override { return d == sound::Direction::Output ? headphone : mic; }
    bool capture_waits_for_guest() const override { return waits; }

    bool accept = true;
    bool waits = false;  // a live source unless a test says otherwise
    bool headphone = true;
    bool mic = false;
    std::vector<std::pair<sound::Direction, sound::PcmFormat>> started;
    std::vector<sound::Direction> stopped;
    std::vector<std::uint8_t> played;
    std::uint8_t next_capture = 1;
};

template <typename T>
std::vector<std::uint8_t> bytes_of(const T& value) {
    std::vector<std::uint8_t> out(sizeof value);
    std::memcpy(out.data(), &value, sizeof value);
    return out;
}

struct SndRig {
    FakeGuestMemory mem{8 << 20};
    FakeMsiController msi;
    FakeIrqLine intx;
    FakeSoundBackend backend;
    std::unique_ptr<VirtioSnd> snd;
    std::unique_ptr<VirtioDriver> drv;
    VirtqueueBuilder control{mem, 0x10000, 64, 0x100000};
    VirtqueueBuilder event{mem, 0x20000, 64, 0x200000};
    VirtqueueBuilder tx{mem, 0x30000, 64, 0x300000};
    VirtqueueBuilder rx{mem, 0x40000, 64, 0x400000};
    std::vector<std::pair<unsigned, std::chrono::nanoseconds>> clock;

    SndRig() { make(); }
    void make() {
        snd = std::make_unique<VirtioSnd>(mem, msi, intx, backend);
        drv = std::make_unique<VirtioDriver>(*snd);
        snd->set_clock([this](unsigned s, std::chrono::nanoseconds p) { clock.emplace_back(s, p); });
    }

    // MSI-X: vector q for queue q, 4 for configuration changes.
    void bring_up() {
        REQUIRE(drv->negotiate(1ull << xover::virtio_net::spec::kFeatureVersion1));
        drv->set_msix_control(true, false);
        for (unsigned v = 0; v < VirtioSnd::kMsixVectors; ++v) drv->setup_vector(v);
        drv->set_common(vcfg::kMsix, 2, 4);
        drv->setup_queue(0, control.layout(), 0);
        drv->setup_queue(1, event.layout(), 1);
        drv->setup_queue(2, tx.layout(), 2);
        drv->setup_queue(3, rx.layout(), 3);
        drv->driver_ok();
        REQUIRE(drv->status() == (vcfg::kAck | vcfg::kDriver | vcfg::kFeaturesOk | vcfg::kDriverOk));
    }

    // Sends one control request; returns the response bytes the device wrote.
    std::vector<std::uint8_t> request(const std::vector<std::uint8_t>& req, std::uint32_t response_room = 256) {
        std::uint16_t n = control.used_idx();
        Buf out = control.writable(response_room);
        control.add({control.readable(req), out});
        drv->notify(0);
        REQUIRE(control.used_idx() == std::uint16_t(n + 1));
        return control.bytes(out, control.used(n).len);
    }
    std::uint32_t status_of(const std::vector<std::uint8_t>& response) {
        REQUIRE(response.size() >= 4);
        std::uint32_t code;
        std::memcpy(&code, response.data(), 4);
        return code;
    }
    std::uint32_t simple(std::uint32_t code, std::uint32_t stream) {
        virtio_snd_pcm_hdr h{};
        h.hdr.code = code;
        h.stream_id = stream;
        return status_of(request(bytes_of(h)));
    }
    std::uint32_t set_params(std::uint32_t stream, std::uint32_t period_bytes = 1920, std::uint8_t channels = 2,
                             std::uint8_t format = VIRTIO_SND_PCM_FMT_S16, std::uint8_t rate = VIRTIO_SND_PCM_RATE_48000,
                             std::uint32_t features = 0) {
        virtio_snd_pcm_set_params p{};
        p.hdr.hdr.code = VIRTIO_SND_R_PCM_SET_PARAMS;
        p.hdr.stream_id = stream;
        p.buffer_bytes = period_bytes * 4;
        p.period_bytes = period_bytes;
        p.features = features;
        p.channels = channels;
        p.format = format;
        p.rate = rate;
        return status_of(request(bytes_of(p)));
    }
    void run_stream(std::uint32_t stream) {
        REQUIRE(set_params(stream) == VIRTIO_SND_S_OK);
        REQUIRE(simple(VIRTIO_SND_R_PCM_PREPARE, stream) == VIRTIO_SND_S_OK);
        REQUIRE(simple(VIRTIO_SND_R_PCM_START, stream) == VIRTIO_SND_S_OK);
    }
    // A playback request: header, data, status. Returns the status buffer.
    Buf play(std::uint32_t stream, const std::vector<std::uint8_t>& data) {
        virtio_snd_pcm_xfer x{stream};
        Buf status = tx.writable(8);
        tx.add({tx.readable(bytes_of(x)), tx.readable(data), status});
        drv->notify(2);
        return status;
    }
    // A capture request: header, room for `bytes`, status.
    std::pair<Buf, Buf> record(std::uint32_t stream, std::uint32_t bytes) {
        virtio_snd_pcm_xfer x{stream};
        Buf data = rx.writable(bytes), status = rx.writable(8);
        rx.add({rx.readable(bytes_of(x)), data, status});
        drv->notify(3);
        return {data, status};
    }
    std::uint32_t io_status(VirtqueueBuilder& q, const Buf& status) {
        auto b = q.bytes(status, 8);
        std::uint32_t code;
        std::memcpy(&code, b.data(), 4);
        return code;
    }
    std::uint32_t io_latency(VirtqueueBuilder& q, const Buf& status) {
        auto b = q.bytes(status, 8);
        std::uint32_t bytes;
        std::memcpy(&bytes, b.data() + 4, 4);
        return bytes;
    }
    std::uint64_t counter(const std::string& name) const {
        for (auto& [k, v] : snd->counters())
            if (k == name) return v;
        FAIL("no counter " << name);
        return 0;
    }
};

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
    std::vector<std::uint8_t> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = std::uint8_t(seed + i * 3);
    return out;
}

std::vector<std::uint8_t> query(std::uint32_t code, std::uint32_t start, std::uint32_t count, std::uint32_t size) {
    virtio_snd_query_info q{};
    q.hdr.code = code;
    q.start_id = start;
    q.count = count;
    q.size = size;
    return bytes_of(q);
}

}  // namespace

TEST_CASE("virtio-snd: PCI identity, configuration and features", "[virtio][snd]") {
    SndRig r;
    CHECK(r.drv->cfg_read(0, 2) == 0x1af4);
    CHECK(r.drv->cfg_read(2, 2) == 0x1059);  // 0x1040 + 25
    CHECK(r.drv->cfg_read(9, 1) == 0x00);
    CHECK(r.drv->cfg_read(0xa, 2) == 0x0401);  // multimedia, audio
    CHECK(r.drv->read(VirtioDriver::Dev::kDeviceOffset + 0, 4) == 2);  // jacks
    CHECK(r.drv->read(VirtioDriver::Dev::kDeviceOffset + 4, 4) == 2);  // streams
    CHECK(r.drv->read(VirtioDriver::Dev::kDeviceOffset + 8, 4) == 2);  // chmaps
    CHECK(r.drv->read(VirtioDriver::Dev::kDeviceOffset + 12, 4) == 0);
    CHECK(r.drv->device_features() == VirtioDriver::Dev::kTransportFeatures);
    CHECK(r.drv->common(vcfg::kNumQueues, 2) == 4);
}

TEST_CASE("virtio-snd: jack, PCM and channel map information", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    SECTION("PCM info: S16, 44.1 and 48 kHz, 1-2 channels, one output and one input") {
        auto resp = r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, sizeof(virtio_snd_pcm_info)));
        REQUIRE(resp.size() == 4 + 2 * sizeof(virtio_snd_pcm_info));
        CHECK(r.status_of(resp) == VIRTIO_SND_S_OK);
        virtio_snd_pcm_info info[2];
        std::memcpy(info, resp.data() + 4, sizeof info);
        CHECK(info[0].direction == VIRTIO_SND_D_OUTPUT);
        CHECK(info[1].direction == VIRTIO_SND_D_INPUT);
        for (auto& i : info) {
            CHECK(i.formats == 1ull << VIRTIO_SND_PCM_FMT_S16);
            CHECK(i.rates == ((1ull << VIRTIO_SND_PCM_RATE_44100) | (1ull << VIRTIO_SND_PCM_RATE_48000)));
            CHECK(i.channels_min == 1);
            CHECK(i.channels_max == 2);
            CHECK(i.features == 0);
        }
    }
    SECTION("jack info: a headphone and a microphone, connected as the backend says") {
        auto resp = r.request(query(VIRTIO_SND_R_JACK_INFO, 0, 2, sizeof(virtio_snd_jack_info)));
        REQUIRE(r.status_of(resp) == VIRTIO_SND_S_OK);
        virtio_snd_jack_info info[2];
        std::memcpy(info, resp.data() + 4, sizeof info);
        CHECK((info[0].hda_reg_defconf >> 20 & 0xf) == 0x2);  // headphone out
        CHECK((info[1].hda_reg_defconf >> 20 & 0xf) == 0xa);  // mic in
        CHECK(info[0].connected == 1);
        CHECK(info[1].connected == 0);
        CHECK(info[0].features == 0);
    }
    SECTION("a larger item size is padded; one item from an offset") {
        auto resp = r.request(query(VIRTIO_SND_R_CHMAP_INFO, 1, 1, 40));
        REQUIRE(resp.size() == 44);
        CHECK(r.status_of(resp) == VIRTIO_SND_S_OK);
        virtio_snd_chmap_info info;
        std::memcpy(&info, resp.data() + 4, sizeof info);
        CHECK(info.direction == VIRTIO_SND_D_INPUT);
        CHECK(info.channels == 2);
        CHECK(info.positions[0] == VIRTIO_SND_CHMAP_FL);
        CHECK(info.positions[1] == VIRTIO_SND_CHMAP_FR);
        for (std::size_t i = 4 + sizeof info; i < resp.size(); ++i) CHECK(resp[i] == 0);
    }
    SECTION("refusals") {
        CHECK(r.status_of(r.request(query(VIRTIO_SND_R_PCM_INFO, 2, 1, 32))) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.status_of(r.request(query(VIRTIO_SND_R_PCM_INFO, 1, 2, 32))) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.status_of(r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 0xffffffff, 32))) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.status_of(r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, 8))) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.status_of(r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, 0x10000000))) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.status_of(r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, 32), 40)) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.status_of(r.request({0x00, 0x01})) == VIRTIO_SND_S_BAD_MSG);  // shorter than a header
        CHECK(r.status_of(r.request(bytes_of(virtio_snd_hdr{0x7777}))) == VIRTIO_SND_S_NOT_SUPP);
        virtio_snd_jack_remap remap{};
        remap.hdr.hdr.code = VIRTIO_SND_R_JACK_REMAP;
        CHECK(r.status_of(r.request(bytes_of(remap))) == VIRTIO_SND_S_NOT_SUPP);
        CHECK(r.counter("control_refused") == 9);
    }
}

TEST_CASE("virtio-snd: set params refuses what is not offered", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    CHECK(r.set_params(0, 1920, 2, VIRTIO_SND_PCM_FMT_U8) == VIRTIO_SND_S_NOT_SUPP);
    CHECK(r.set_params(0, 1920, 2, VIRTIO_SND_PCM_FMT_S16, VIRTIO_SND_PCM_RATE_8000) == VIRTIO_SND_S_NOT_SUPP);
    CHECK(r.set_params(0, 1920, 2, VIRTIO_SND_PCM_FMT_S16, 200) == VIRTIO_SND_S_NOT_SUPP);
    CHECK(r.set_params(0, 1920, 3) == VIRTIO_SND_S_NOT_SUPP);
    CHECK(r.set_params(0, 1920, 0) == VIRTIO_SND_S_NOT_SUPP);
    CHECK(r.set_params(0, 1920, 2, VIRTIO_SND_PCM_FMT_S16, VIRTIO_SND_PCM_RATE_48000, 1u << VIRTIO_SND_PCM_F_MSG_POLLING) ==
          VIRTIO_SND_S_NOT_SUPP);
    CHECK(r.set_params(0, 1922) == VIRTIO_SND_S_BAD_MSG);          // not whole frames
    CHECK(r.set_params(0, 0) == VIRTIO_SND_S_BAD_MSG);
    CHECK(r.set_params(0, 48000 * 4 * 2) == VIRTIO_SND_S_BAD_MSG);  // a 2 s period
    CHECK(r.set_params(2) == VIRTIO_SND_S_BAD_MSG);                 // no such stream
    CHECK(r.set_params(1, 882, 1, VIRTIO_SND_PCM_FMT_S16, VIRTIO_SND_PCM_RATE_44100) == VIRTIO_SND_S_OK);
    CHECK(r.set_params(0) == VIRTIO_SND_S_OK);
}

TEST_CASE("virtio-snd: the stream state machine and its clock", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    CHECK(r.simple(VIRTIO_SND_R_PCM_PREPARE, 0) == VIRTIO_SND_S_BAD_MSG);  // no params yet
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 0) == VIRTIO_SND_S_BAD_MSG);
    REQUIRE(r.set_params(0) == VIRTIO_SND_S_OK);
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 0) == VIRTIO_SND_S_BAD_MSG);  // not prepared
    CHECK(r.simple(VIRTIO_SND_R_PCM_PREPARE, 0) == VIRTIO_SND_S_OK);
    CHECK(r.simple(VIRTIO_SND_R_PCM_STOP, 0) == VIRTIO_SND_S_BAD_MSG);  // not running
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 0) == VIRTIO_SND_S_OK);
    REQUIRE(r.clock.size() == 1);
    CHECK(r.clock[0].first == 0);
    CHECK(r.clock[0].second == std::chrono::milliseconds(10));  // 480 stereo frames at 48 kHz
    REQUIRE(r.backend.started.size() == 1);
    CHECK(r.backend.started[0].second == sound::PcmFormat{.channels = 2, .rate = 48000});
    CHECK(r.set_params(0) == VIRTIO_SND_S_BAD_MSG);                       // not while running
    CHECK(r.simple(VIRTIO_SND_R_PCM_RELEASE, 0) == VIRTIO_SND_S_BAD_MSG);  // stop first
    CHECK(r.simple(VIRTIO_SND_R_PCM_STOP, 0) == VIRTIO_SND_S_OK);
    REQUIRE(r.clock.size() == 2);
    CHECK(r.clock[1].second == std::chrono::nanoseconds(0));
    CHECK(r.backend.stopped.size() == 1);
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 0) == VIRTIO_SND_S_OK);  // again from Stopped
    CHECK(r.simple(VIRTIO_SND_R_PCM_STOP, 0) == VIRTIO_SND_S_OK);
    CHECK(r.simple(VIRTIO_SND_R_PCM_RELEASE, 0) == VIRTIO_SND_S_OK);
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 0) == VIRTIO_SND_S_BAD_MSG);  // released
    CHECK(r.simple(VIRTIO_SND_R_PCM_PREPARE, 0) == VIRTIO_SND_S_OK);
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 9) == VIRTIO_SND_S_BAD_MSG);
}

TEST_CASE("virtio-snd: playback plays one period per tick and completes what was played", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    r.run_stream(0);
    auto a = pattern(1920, 1), b = pattern(1920, 2), c = pattern(2880, 3);  // c: one and a half periods
    auto sa = r.play(0, a), sb = r.play(0, b), sc = r.play(0, c);
    CHECK(r.tx.used_idx() == 0);  // nothing played before the clock ticks
    r.snd->period_elapsed(0);
    CHECK(r.backend.played == a);
    REQUIRE(r.tx.used_idx() == 1);
    CHECK(r.tx.used(0).len == 8);
    CHECK(r.io_status(r.tx, sa) == VIRTIO_SND_S_OK);
    CHECK(r.msi.count(2) == 1);
    r.snd->period_elapsed(0);
    r.snd->period_elapsed(0);  // the first half of c: not complete yet
    CHECK(r.tx.used_idx() == 2);
    CHECK(r.io_status(r.tx, sb) == VIRTIO_SND_S_OK);
    r.snd->period_elapsed(0);  // the rest of c, half a period short
    REQUIRE(r.tx.used_idx() == 3);
    CHECK(r.io_status(r.tx, sc) == VIRTIO_SND_S_OK);
    std::vector<std::uint8_t> all = a;
    all.insert(all.end(), b.begin(), b.end());
    all.insert(all.end(), c.begin(), c.end());
    CHECK(r.backend.played == all);
    CHECK(r.counter("playback_periods") == 4);
    CHECK(r.counter("playback_bytes") == 1920 * 2 + 2880);
    CHECK(r.counter("underruns") == 1);
    CHECK(r.counter("underrun_bytes") == 960);
    r.snd->period_elapsed(0);  // nothing queued: an underrun, nothing made up
    CHECK(r.backend.played.size() == all.size());
    CHECK(r.counter("underruns") == 2);
}

TEST_CASE("virtio-snd: capture fills one period per tick", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    r.run_stream(1);
    r.snd->period_elapsed(1);  // no buffer: the period is lost
    CHECK(r.counter("overruns") == 1);
    CHECK(r.counter("overrun_bytes") == 1920);
    auto [d1, s1] = r.record(1, 1920);
    auto [d2, s2] = r.record(1, 1920);
    r.backend.next_capture = 7;
    r.snd->period_elapsed(1);
    REQUIRE(r.rx.used_idx() == 1);
    CHECK(r.rx.used(0).len == 1920 + 8);
    CHECK(r.io_status(r.rx, s1) == VIRTIO_SND_S_OK);
    auto got = r.rx.bytes(d1, 1920);
    for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == std::uint8_t(7 + i));
    CHECK(r.msi.count(3) == 1);
    CHECK(r.counter("capture_bytes") == 1920);
    SECTION("release returns what is queued") {
        CHECK(r.simple(VIRTIO_SND_R_PCM_STOP, 1) == VIRTIO_SND_S_OK);
        CHECK(r.simple(VIRTIO_SND_R_PCM_RELEASE, 1) == VIRTIO_SND_S_OK);
        REQUIRE(r.rx.used_idx() == 2);
        CHECK(r.rx.used(1).len == 8);
        CHECK(r.io_status(r.rx, s2) == VIRTIO_SND_S_OK);
    }
    SECTION("a stopped stream's clock does nothing") {
        CHECK(r.simple(VIRTIO_SND_R_PCM_STOP, 1) == VIRTIO_SND_S_OK);
        r.snd->period_elapsed(1);
        CHECK(r.rx.used_idx() == 1);
    }
}

TEST_CASE("virtio-snd: a source that waits for the guest loses nothing when the guest falls behind",
          "[virtio][snd]") {
    SndRig r;
    r.backend.waits = true;
    r.bring_up();
    r.run_stream(1);
    r.snd->period_elapsed(1);  // no buffer: late, but nothing is taken from the source
    CHECK(r.counter("overruns") == 1);
    CHECK(r.counter("overrun_bytes") == 0);
    CHECK(r.backend.next_capture == 1);
    auto [d1, s1] = r.record(1, 960);
    r.snd->period_elapsed(1);  // half a period of room: half a period is read
    REQUIRE(r.rx.used_idx() == 1);
    CHECK(r.rx.used(0).len == 960 + 8);
    CHECK(r.io_latency(r.rx, s1) == 0);
    CHECK(r.counter("overruns") == 2);
    CHECK(r.counter("overrun_bytes") == 0);
    auto [d2, s2] = r.record(1, 1920);
    r.snd->period_elapsed(1);
    REQUIRE(r.rx.used_idx() == 2);
    CHECK(r.counter("overruns") == 2);
    // The guest got the source's bytes in order, with no gap.
    auto first = r.rx.bytes(d1, 960), second = r.rx.bytes(d2, 1920);
    first.insert(first.end(), second.begin(), second.end());
    for (std::size_t i = 0; i < first.size(); ++i) REQUIRE(first[i] == std::uint8_t(1 + i));
    CHECK(r.counter("capture_bytes") == 2880);
    SECTION("a request with no room completes in its turn, reading nothing") {
        auto [d3, s3] = r.record(1, 0);
        r.snd->period_elapsed(1);
        REQUIRE(r.rx.used_idx() == 3);
        CHECK(r.io_status(r.rx, s3) == VIRTIO_SND_S_OK);
        CHECK(r.backend.next_capture == std::uint8_t(1 + 2880));
    }
}

TEST_CASE("virtio-snd: each completion's latency is what the device still holds", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    SECTION("capture: the rest of the period, captured after the buffer") {
        r.run_stream(1);
        auto [d1, s1] = r.record(1, 480);
        auto [d2, s2] = r.record(1, 1440);
        r.snd->period_elapsed(1);
        REQUIRE(r.rx.used_idx() == 2);
        CHECK(r.io_latency(r.rx, s1) == 1440);
        CHECK(r.io_latency(r.rx, s2) == 0);
    }
    SECTION("playback: what is still queued ahead of the output") {
        r.run_stream(0);
        auto sa = r.play(0, pattern(1920, 1)), sb = r.play(0, pattern(960, 2));
        r.snd->period_elapsed(0);
        REQUIRE(r.tx.used_idx() == 1);
        CHECK(r.io_latency(r.tx, sa) == 960);
        r.snd->period_elapsed(0);
        CHECK(r.io_latency(r.tx, sb) == 0);
    }
}

TEST_CASE("virtio-snd: a backend that refuses the format: silence, counted", "[virtio][snd]") {
    SndRig r;
    r.backend.accept = false;
    r.bring_up();
    r.run_stream(1);
    auto [d, s] = r.record(1, 1920);
    r.snd->period_elapsed(1);
    REQUIRE(r.rx.used_idx() == 1);
    for (auto b : r.rx.bytes(d, 1920)) REQUIRE(b == 0);
    CHECK(r.counter("backend_refused") == 1);
    CHECK(r.simple(VIRTIO_SND_R_PCM_STOP, 1) == VIRTIO_SND_S_OK);
    CHECK(r.backend.stopped.empty());  // never started
}

TEST_CASE("virtio-snd: I/O requests a correct driver does not send", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    SECTION("a stream that is not prepared") {
        auto s = r.play(0, pattern(1920, 1));
        REQUIRE(r.tx.used_idx() == 1);
        CHECK(r.io_status(r.tx, s) == VIRTIO_SND_S_BAD_MSG);
        CHECK(r.counter("io_refused") == 1);
    }
    SECTION("the input stream on the tx queue") {
        r.run_stream(1);
        auto s = r.play(1, pattern(1920, 1));
        REQUIRE(r.tx.used_idx() == 1);
        CHECK(r.io_status(r.tx, s) == VIRTIO_SND_S_BAD_MSG);
    }
    SECTION("no room for the status") {
        r.run_stream(0);
        virtio_snd_pcm_xfer x{0};
        r.tx.add({r.tx.readable(bytes_of(x)), r.tx.readable(pattern(64, 1))});
        r.drv->notify(2);
        REQUIRE(r.tx.used_idx() == 1);
        CHECK(r.tx.used(0).len == 0);
        CHECK(r.counter("io_bad_requests") == 1);
        CHECK(r.counter("hostile") == 1);
        CHECK_FALSE(r.drv->status() & vcfg::kNeedsReset);
    }
    SECTION("a header split across descriptors") {
        r.run_stream(0);
        std::vector<std::uint8_t> h = {0, 0}, rest = {0, 0};
        auto data = pattern(1920, 5);
        Buf s1 = r.tx.writable(3), s2 = r.tx.writable(5);
        r.tx.add({r.tx.readable(h), r.tx.readable(rest), r.tx.readable(data), s1, s2});
        r.drv->notify(2);
        r.snd->period_elapsed(0);
        REQUIRE(r.tx.used_idx() == 1);
        CHECK(r.backend.played == data);
        auto a = r.tx.bytes(s1, 3), b = r.tx.bytes(s2, 5);
        std::uint32_t code = a[0] | a[1] << 8 | a[2] << 16 | b[0] << 24;
        CHECK(code == VIRTIO_SND_S_OK);
    }
    SECTION("a control chain with nowhere to answer") {
        r.control.add({r.control.readable(query(VIRTIO_SND_R_PCM_INFO, 0, 2, 32))});
        r.drv->notify(0);
        REQUIRE(r.control.used_idx() == 1);
        CHECK(r.control.used(0).len == 0);
        CHECK(r.counter("hostile") == 1);
    }
}

TEST_CASE("virtio-snd: jack events", "[virtio][snd]") {
    SndRig r;
    r.snd->set_jack_connected(VirtioSnd::kMicrophoneJack, true);  // before the driver: no event
    r.bring_up();
    r.request(query(VIRTIO_SND_R_JACK_INFO, 0, 2, sizeof(virtio_snd_jack_info)));
    CHECK(r.snd->jack_connected(VirtioSnd::kMicrophoneJack));
    Buf e1 = r.event.writable(8);
    r.event.add({e1});
    r.drv->notify(1);
    CHECK(r.event.used_idx() == 0);
    r.snd->set_jack_connected(VirtioSnd::kMicrophoneJack, false);
    REQUIRE(r.event.used_idx() == 1);
    CHECK(r.event.used(0).len == 8);
    auto b = r.event.bytes(e1, 8);
    std::uint32_t code, data;
    std::memcpy(&code, b.data(), 4);
    std::memcpy(&data, b.data() + 4, 4);
    CHECK(code == VIRTIO_SND_EVT_JACK_DISCONNECTED);
    CHECK(data == VirtioSnd::kMicrophoneJack);
    CHECK(r.msi.count(1) == 1);
    SECTION("kept until the driver posts a buffer") {
        r.snd->set_jack_connected(VirtioSnd::kHeadphoneJack, false);
        r.snd->set_jack_connected(VirtioSnd::kHeadphoneJack, false);  // no change: no event
        CHECK(r.event.used_idx() == 1);
        Buf e2 = r.event.writable(8);
        r.event.add({e2});
        r.drv->notify(1);
        REQUIRE(r.event.used_idx() == 2);
        auto c = r.event.bytes(e2, 8);
        std::memcpy(&code, c.data(), 4);
        std::memcpy(&data, c.data() + 4, 4);
        CHECK(code == VIRTIO_SND_EVT_JACK_DISCONNECTED);
        CHECK(data == VirtioSnd::kHeadphoneJack);
        CHECK(r.counter("jack_events") == 2);
    }
    SECTION("the newest events are kept when the driver posts none") {
        for (int i = 0; i < 40; ++i) r.snd->set_jack_connected(VirtioSnd::kHeadphoneJack, i % 2 == 0);
        CHECK(r.counter("jack_events_dropped") == 39 - VirtioSnd::kMaxPendingEvents);  // the first set changes nothing
    }
}

TEST_CASE("virtio-snd: a jack event between JACK_INFO and the next request is sent again", "[virtio][snd]") {
    // Linux copies JACK_INFO's `connected` after it has the reply: an event
    // handled in between is overwritten by the older state. Its next control
    // request (PCM_INFO) shows the copy is done, and the event comes again.
    SndRig r;
    r.bring_up();
    std::vector<Buf> buffers;  // taken in order: used element n is buffers[n]
    for (int i = 0; i < 4; ++i) {
        buffers.push_back(r.event.writable(8));
        r.event.add({buffers.back()});
    }
    r.drv->notify(1);
    auto event_code = [&](std::size_t used) {
        std::uint32_t code;
        std::memcpy(&code, r.event.bytes(buffers[used], 8).data(), 4);
        return code;
    };
    r.snd->set_jack_connected(VirtioSnd::kMicrophoneJack, true);  // before JACK_INFO: its reply says so
    r.request(query(VIRTIO_SND_R_JACK_INFO, 0, 2, sizeof(virtio_snd_jack_info)));
    REQUIRE(r.event.used_idx() == 1);  // held until that first request
    r.snd->set_jack_connected(VirtioSnd::kHeadphoneJack, false);
    REQUIRE(r.event.used_idx() == 2);
    CHECK(event_code(1) == VIRTIO_SND_EVT_JACK_DISCONNECTED);
    r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, sizeof(virtio_snd_pcm_info)));
    REQUIRE(r.event.used_idx() == 3);
    CHECK(event_code(2) == VIRTIO_SND_EVT_JACK_DISCONNECTED);
    CHECK(r.counter("jack_events_repeated") == 1);
    r.request(query(VIRTIO_SND_R_CHMAP_INFO, 0, 2, sizeof(virtio_snd_chmap_info)));
    CHECK(r.event.used_idx() == 3);  // once
}

TEST_CASE("virtio-snd: jack events wait for the driver's first control request", "[virtio][snd]") {
    // Linux 6.1 posts event buffers at DRIVER_OK but allocates its jack
    // table only just before it asks JACK_INFO: an event in between is a
    // NULL write in its handler.
    SndRig r;
    r.bring_up();
    r.event.add({r.event.writable(8)});
    r.drv->notify(1);
    r.snd->set_jack_connected(VirtioSnd::kMicrophoneJack, true);
    CHECK(r.event.used_idx() == 0);
    CHECK(r.msi.count(1) == 0);
    r.request(query(VIRTIO_SND_R_JACK_INFO, 0, 2, sizeof(virtio_snd_jack_info)));
    CHECK(r.event.used_idx() == 1);
    SECTION("and again after a reset") {
        r.drv->set_status(0);
        r.bring_up();
        r.event.add({r.event.writable(8)});
        r.drv->notify(1);
        auto interrupts = r.msi.count(1);  // the rig's rings keep their indices: count interrupts
        r.snd->set_jack_connected(VirtioSnd::kMicrophoneJack, false);
        CHECK(r.msi.count(1) == interrupts);
        r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, sizeof(virtio_snd_pcm_info)));
        CHECK(r.msi.count(1) == interrupts + 1);
    }
}

TEST_CASE("virtio-snd: a reset stops running streams and their clocks", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    r.run_stream(0);
    r.play(0, pattern(1920, 1));
    r.drv->set_status(0);
    REQUIRE(r.clock.size() == 2);
    CHECK(r.clock[1].second == std::chrono::nanoseconds(0));
    CHECK(r.backend.stopped.size() == 1);
    r.snd->period_elapsed(0);  // a late tick after the reset
    CHECK(r.backend.played.empty());
    r.bring_up();
    CHECK(r.simple(VIRTIO_SND_R_PCM_START, 0) == VIRTIO_SND_S_BAD_MSG);  // back to no params
}

TEST_CASE("virtio-snd: with EVENT_IDX every queue asks for the next notify once empty", "[virtio][snd]") {
    // Linux kicks only when avail_event says so: a card that never writes it
    // hears one request and no more (its driver then times out at probe).
    SndRig r;
    REQUIRE(r.drv->negotiate((1ull << xover::virtio_net::spec::kFeatureVersion1) |
                             (1ull << xover::virtio_net::spec::kFeatureEventIdx)));
    r.drv->setup_queue(0, r.control.layout());
    r.drv->setup_queue(1, r.event.layout());
    r.drv->setup_queue(2, r.tx.layout());
    r.drv->setup_queue(3, r.rx.layout());
    r.drv->driver_ok();
    r.request(query(VIRTIO_SND_R_JACK_INFO, 0, 2, sizeof(virtio_snd_jack_info)));
    CHECK(r.control.avail_event() == 1);
    r.request(query(VIRTIO_SND_R_PCM_INFO, 0, 2, sizeof(virtio_snd_pcm_info)));
    CHECK(r.control.avail_event() == 2);
    r.run_stream(0);
    r.play(0, pattern(1920, 1));
    CHECK(r.tx.avail_event() == 1);
    // An event with no buffer to go in asks for the driver's next one.
    r.snd->set_jack_connected(VirtioSnd::kHeadphoneJack, false);
    CHECK(r.event.avail_event() == 0);
    r.event.add({r.event.writable(8)});
    r.drv->notify(1);
    CHECK(r.event.used_idx() == 1);
}

TEST_CASE("virtio-snd: RELEASE also returns requests the card had not taken yet", "[virtio][snd]") {
    SndRig r;
    r.bring_up();
    REQUIRE(r.set_params(0) == VIRTIO_SND_S_OK);
    REQUIRE(r.simple(VIRTIO_SND_R_PCM_PREPARE, 0) == VIRTIO_SND_S_OK);
    // Queued without a notify (a driver relying on a suppressed kick).
    virtio_snd_pcm_xfer x{0};
    r.tx.add({r.tx.readable(bytes_of(x)), r.tx.readable(pattern(1920, 1)), r.tx.writable(8)});
    CHECK(r.simple(VIRTIO_SND_R_PCM_RELEASE, 0) == VIRTIO_SND_S_OK);
    REQUIRE(r.tx.used_idx() == 1);
    CHECK(r.tx.used(0).len == 8);
}
