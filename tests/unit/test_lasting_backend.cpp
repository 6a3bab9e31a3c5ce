// devices::LastingBackend: one backend, opened once, that the devices of
// successive vhost-user sessions attach to and detach from.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "fake_net.hpp"
#include "test_net_support.hpp"
#include "xover/devices/lasting_backend.hpp"

using namespace xover;

namespace {

struct RecordingDevice : net::FrameReceiver {
    std::vector<std::vector<std::uint8_t>> frames;
    bool deliver(std::span<const std::uint8_t> f) override {
        frames.emplace_back(f.begin(), f.end());
        return true;
    }
};

std::uint64_t count(const net::Counters& counters, const std::string& name) {
    for (auto& [k, v] : counters)
        if (k == name) return v;
    return ~std::uint64_t(0);
}

}  // namespace

TEST_CASE("LastingBackend: devices attach and detach, frames between them are dropped and counted",
          "[vhost-user][lasting-backend]") {
    auto inner = std::make_unique<xover::test::FakeBackend>();
    auto* fake = inner.get();
    xover::test::LoopThread io;
    devices::LastingBackend lasting(std::move(inner), io.loop());
    REQUIRE(fake->receiver == &lasting);  // started once, delivering to the lasting backend
    const std::vector<std::uint8_t> frame{1, 2, 3, 4};

    CHECK(fake->receiver->deliver(frame));  // no device: taken and dropped
    {
        RecordingDevice device;
        bool resumed = false;
        auto attached = lasting.attach();
        attached->start(io.loop(), device, [&] { resumed = true; });
        CHECK(fake->receiver->deliver(frame));
        REQUIRE(device.frames.size() == 1);
        CHECK(attached->send(frame) == net::Backend::SendResult::Sent);
        CHECK(fake->sent.size() == 1);
        fake->tx_ready();
        CHECK(resumed);
        CHECK(count(attached->counters(), "rx_dropped_no_device") == 1);
        // One device at a time.
        RecordingDevice other;
        auto second = lasting.attach();
        CHECK_THROWS(second->start(io.loop(), other, [] {}));
    }
    CHECK(fake->receiver->deliver(frame));  // detached again: dropped
    fake->tx_ready();                       // and nobody to resume: no crash
    RecordingDevice next;
    auto attached = lasting.attach();
    attached->start(io.loop(), next, [] {});
    CHECK(count(attached->counters(), "rx_dropped_no_device") == 2);
    CHECK(fake->receiver->deliver(frame));
    CHECK(next.frames.size() == 1);
}

TEST_CASE("LastingBackend: a per-session backend is made anew for each attach", "[vhost-user][lasting-backend]") {
    int made = 0;
    devices::LastingBackend lasting([&] {
        ++made;
        return std::make_unique<xover::test::FakeBackend>();
    });
    auto a = lasting.attach();
    auto b = lasting.attach();
    CHECK(made == 2);
    CHECK(a.get() != b.get());
}
