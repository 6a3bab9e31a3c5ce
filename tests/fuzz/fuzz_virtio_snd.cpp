// Fuzz target: the virtio-snd card as a hostile guest drives it. A
// structured bring-up (features, the four queues at addresses the input
// picks, DRIVER_OK) is followed by any sequence of: control requests and
// PCM I/O chains the input writes into guest memory (any header, length,
// split), notifies of any queue, stream clock ticks, jack changes, raw
// transport register writes (resets included), and the guest rewriting
// memory between them.
//
// The card must stay inside guest memory, terminate, answer every request
// with a status (or count it as hostile), and never call its backend with
// anything but whole periods of the stream's format.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <linux/virtio_snd.h>
#include <spdlog/spdlog.h>

#include "fake_guest_memory.hpp"
#include "fake_net.hpp"
#include "xover/byte_order.hpp"
#include "xover/sound/backend.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"

using namespace xover;
using virtio_snd::VirtioSnd;

namespace {

constexpr std::size_t kMemoryBytes = 256 << 10;
constexpr std::uint64_t kQueueBase = 0x1000;  // four rings of 64 at 0x1000 + q * 0x2000
constexpr std::uint16_t kQueueSize = 64;
constexpr std::uint64_t kData = 0x10000;      // where the chains' buffers go

class NullMsi final : public vmm::MsiController {
public:
    void program(unsigned, std::uint64_t, std::uint32_t) override {}
    void fire(unsigned) override {}
    int eventfd(unsigned) override { return -1; }
};

// Checks what the card hands a backend.
class CheckingBackend final : public sound::Backend {
public:
    bool start(sound::Direction d, const sound::PcmFormat& f) override {
        format_[int(d)] = f;
        return accept;
    }
    void stop(sound::Direction) override {}
    void play(std::span<const std::uint8_t> period) override { check(sound::Direction::Output, period.size()); }
    void capture(std::span<std::uint8_t> period) override {
        check(sound::Direction::Input, period.size());
        std::memset(period.data(), 0x5a, period.size());
    }
    bool plugged(sound::Direction) const override { return true; }
    bool capture_waits_for_guest() const override { return waits; }
    bool accept = true;
    bool waits = false;  // a file-like input, read only for the guest's buffers

private:
    void check(sound::Direction d, std::size_t bytes) {
        if (bytes == 0 || bytes % format_[int(d)].frame_bytes() != 0) std::abort();
    }
    std::array<sound::PcmFormat, 2> format_{};
};

struct Driver {
    vmm::IoDevice& bar;
    void write(std::uint64_t offset, unsigned width, std::uint64_t value) {
        std::uint8_t b[8] = {};
        store_le(std::span(b, width), value);
        bar.write(offset, std::span<const std::uint8_t>(b, width));
    }
    void common(std::uint64_t field, unsigned width, std::uint64_t value) {
        write(VirtioSnd::kCommonOffset + field, width, value);
    }
};

// Writes a chain of `parts` (length, device-writable) into ring q's next
// slot and makes it available; buffer bytes come from the input.
void add_chain(FakeGuestMemory& mem, unsigned q, std::uint16_t& avail, std::uint64_t& data,
               FuzzedDataProvider& in) {
    const std::uint64_t desc = kQueueBase + q * 0x2000, ring = desc + 16 * kQueueSize;
    const unsigned parts = in.ConsumeIntegralInRange<unsigned>(1, 4);
    const std::uint16_t head = std::uint16_t((avail * 4) % kQueueSize);
    for (unsigned i = 0; i < parts; ++i) {
        std::uint32_t len = in.ConsumeIntegralInRange<std::uint32_t>(0, 4096);
        bool writable = in.ConsumeBool();
        if (data + len >= kMemoryBytes) data = kData;
        std::uint64_t addr = in.ConsumeProbability<float>() < 0.05f ? in.ConsumeIntegral<std::uint64_t>() : data;
        auto bytes = in.ConsumeBytes<std::uint8_t>(std::min<std::size_t>(len, 64));
        if (addr == data && !bytes.empty()) mem.poke(addr, bytes.data(), bytes.size());
        data += len;
        std::uint16_t flags = std::uint16_t((writable ? virtio_net::spec::kDescWrite : 0) |
                                            (i + 1 < parts ? virtio_net::spec::kDescNext : 0));
        std::uint16_t index = std::uint16_t((head + i) % kQueueSize), next = std::uint16_t((index + 1) % kQueueSize);
        mem.poke(desc + 16 * index, &addr, 8);
        mem.poke(desc + 16 * index + 8, &len, 4);
        mem.poke(desc + 16 * index + 12, &flags, 2);
        mem.poke(desc + 16 * index + 14, &next, 2);
    }
    mem.poke(ring + 4 + 2 * (avail % kQueueSize), &head, 2);
    ++avail;
    mem.poke(ring + 2, &avail, 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    static bool quiet = (spdlog::set_level(spdlog::level::off), true);
    (void)quiet;
    FuzzedDataProvider in(bytes, size);
    FakeGuestMemory mem(kMemoryBytes);
    NullMsi msi;
    test::FakeIrqLine intx;
    CheckingBackend backend;
    backend.accept = in.ConsumeBool();
    backend.waits = in.ConsumeBool();
    std::optional<sound::PcmFormat> only;
    if (in.ConsumeBool()) only = sound::PcmFormat{.channels = in.ConsumeIntegralInRange<unsigned>(1, 2), .rate = 48000};
    VirtioSnd snd(mem, msi, intx, backend, only);
    snd.set_clock([](unsigned, std::chrono::nanoseconds) {});
    Driver drv{*snd.bar(VirtioSnd::kBar).handler};

    // Bring-up: ACK, DRIVER, VERSION_1 (+ maybe more), FEATURES_OK, queues, DRIVER_OK.
    drv.common(20, 1, 3);
    drv.common(8, 4, 1);
    drv.common(12, 4, 1);  // VERSION_1 (bit 32)
    drv.common(8, 4, 0);
    drv.common(12, 4, in.ConsumeIntegral<std::uint32_t>() & ((1u << 28) | (1u << 29)));
    drv.common(20, 1, 11);
    for (unsigned q = 0; q < VirtioSnd::kQueueCount; ++q) {
        const std::uint64_t desc = kQueueBase + q * 0x2000;
        drv.common(22, 2, q);
        drv.common(24, 2, kQueueSize);
        drv.common(32, 8, desc);
        drv.common(40, 8, desc + 16 * kQueueSize);
        drv.common(48, 8, desc + 0x1000);
        drv.common(28, 2, 1);
    }
    drv.common(20, 1, 15);

    std::array<std::uint16_t, VirtioSnd::kQueueCount> avail{};
    std::uint64_t data = kData;
    while (in.remaining_bytes() > 0) {
        switch (in.ConsumeIntegralInRange<int>(0, 6)) {
        case 0: {  // a chain on any queue, then its notify
            unsigned q = in.ConsumeIntegralInRange<unsigned>(0, VirtioSnd::kQueueCount - 1);
            add_chain(mem, q, avail[q], data, in);
            snd.queue_notify(q);
            break;
        }
        case 1: {  // a well-formed control request, fields from the input
            std::uint8_t req[24] = {};
            std::uint32_t codes[] = {VIRTIO_SND_R_JACK_INFO,      VIRTIO_SND_R_PCM_INFO,     VIRTIO_SND_R_CHMAP_INFO,
                                     VIRTIO_SND_R_PCM_SET_PARAMS, VIRTIO_SND_R_PCM_PREPARE,  VIRTIO_SND_R_PCM_START,
                                     VIRTIO_SND_R_PCM_STOP,       VIRTIO_SND_R_PCM_RELEASE, VIRTIO_SND_R_JACK_REMAP};
            std::uint32_t code = codes[in.ConsumeIntegralInRange<std::size_t>(0, std::size(codes) - 1)];
            std::memcpy(req, &code, 4);
            auto rest = in.ConsumeBytes<std::uint8_t>(20);
            if (!rest.empty()) std::memcpy(req + 4, rest.data(), rest.size());
            if (code == VIRTIO_SND_R_PCM_SET_PARAMS && in.ConsumeBool()) {
                req[4] = std::uint8_t(in.ConsumeIntegralInRange<int>(0, 1));  // stream
                std::memset(req + 5, 0, 3);
                std::uint32_t period = 4 * in.ConsumeIntegralInRange<std::uint32_t>(1, 2048);
                std::uint32_t buffer = period * 4, features = 0;
                std::memcpy(req + 8, &buffer, 4);
                std::memcpy(req + 12, &period, 4);
                std::memcpy(req + 16, &features, 4);
                req[20] = std::uint8_t(in.ConsumeIntegralInRange<int>(1, 2));
                req[21] = VIRTIO_SND_PCM_FMT_S16;
                req[22] = in.ConsumeBool() ? VIRTIO_SND_PCM_RATE_48000 : VIRTIO_SND_PCM_RATE_44100;
            }
            const std::uint64_t desc = kQueueBase, ring = desc + 16 * kQueueSize;
            std::uint16_t head = std::uint16_t((avail[0] * 4) % kQueueSize);
            if (data + 4096 >= kMemoryBytes) data = kData;
            std::uint64_t a = data, b = data + 64;
            data += 4096;
            mem.poke(a, req, sizeof req);
            std::uint32_t la = sizeof req, lb = in.ConsumeIntegralInRange<std::uint32_t>(0, 512);
            std::uint16_t f1 = virtio_net::spec::kDescNext, f2 = virtio_net::spec::kDescWrite,
                          n1 = std::uint16_t((head + 1) % kQueueSize), n2 = 0;
            mem.poke(desc + 16 * head, &a, 8);
            mem.poke(desc + 16 * head + 8, &la, 4);
            mem.poke(desc + 16 * head + 12, &f1, 2);
            mem.poke(desc + 16 * head + 14, &n1, 2);
            mem.poke(desc + 16 * n1, &b, 8);
            mem.poke(desc + 16 * n1 + 8, &lb, 4);
            mem.poke(desc + 16 * n1 + 12, &f2, 2);
            mem.poke(desc + 16 * n1 + 14, &n2, 2);
            mem.poke(ring + 4 + 2 * (avail[0] % kQueueSize), &head, 2);
            ++avail[0];
            mem.poke(ring + 2, &avail[0], 2);
            snd.queue_notify(0);
            break;
        }
        case 2:
            snd.period_elapsed(in.ConsumeIntegralInRange<unsigned>(0, 2));
            break;
        case 3:
            snd.set_jack_connected(in.ConsumeIntegralInRange<unsigned>(0, 2), in.ConsumeBool());
            break;
        case 4: {  // any transport register
            std::uint64_t offset = in.ConsumeIntegralInRange<std::uint64_t>(0, VirtioSnd::kBarSize);
            unsigned width = 1u << in.ConsumeIntegralInRange<unsigned>(0, 3);
            drv.write(offset, width, in.ConsumeIntegral<std::uint64_t>());
            break;
        }
        case 5: {  // the guest rewrites memory (rings included)
            auto at = in.ConsumeIntegralInRange<std::size_t>(0, kMemoryBytes - 8);
            auto value = in.ConsumeIntegral<std::uint64_t>();
            std::memcpy(mem.bytes.data() + at, &value, 8);
            break;
        }
        case 6:
            (void)snd.counters();
            break;
        }
    }
    return 0;
}
