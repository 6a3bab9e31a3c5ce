// net::CarrierGate: the operator's carrier switch between a NIC and its
// backend (the control API's PUT /nics/{id}/carrier).
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "fake_net.hpp"
#include "xover/net/carrier_gate.hpp"
#include "xover/vmm/event_loop.hpp"

using namespace xover;

namespace {

struct RecordingNic : net::FrameReceiver {
    bool deliver(std::span<const std::uint8_t> frame) override {
        frames.emplace_back(frame.begin(), frame.end());
        return true;
    }
    void link_state_changed() override { ++link_changes; }
    std::vector<std::vector<std::uint8_t>> frames;
    unsigned link_changes = 0;
};

std::uint64_t counter(const net::Counters& counters, const std::string& name) {
    for (const auto& [key, value] : counters)
        if (key == name) return value;
    FAIL("no counter " << name);
    return 0;
}

}  // namespace

TEST_CASE("carrier gate: down is an unplugged cable, up passes everything again", "[net][carrier]") {
    auto fake = std::make_unique<test::FakeBackend>();
    test::FakeBackend& wire = *fake;
    net::CarrierGate gate(std::move(fake));
    auto loop = vmm::make_event_loop();  // FakeBackend never watches it
    RecordingNic nic;
    gate.start(*loop, nic, [] {});
    const std::vector<std::uint8_t> frame(64, 0xab);

    CHECK(gate.link_up());
    CHECK(gate.send(frame) == net::Backend::SendResult::Sent);
    CHECK(wire.receiver->deliver(frame));
    CHECK(nic.frames.size() == 1);

    gate.set_carrier(false);
    CHECK(nic.link_changes == 1);
    CHECK_FALSE(gate.link_up());
    CHECK(gate.send(frame) == net::Backend::SendResult::Dropped);
    CHECK(wire.sent.size() == 1);                 // nothing reached the wire
    CHECK(wire.receiver->deliver(frame));          // taken from the wire...
    CHECK(nic.frames.size() == 1);                 // ...and gone
    CHECK(counter(gate.counters(), "tx_dropped_carrier") == 1);
    CHECK(counter(gate.counters(), "rx_dropped_carrier") == 1);
    CHECK(counter(gate.counters(), "sent") == 1);  // the backend's own counters stay

    gate.set_carrier(false);  // no change, no interrupt
    CHECK(nic.link_changes == 1);

    gate.set_carrier(true);
    CHECK(nic.link_changes == 2);
    CHECK(gate.link_up());
    CHECK(gate.send(frame) == net::Backend::SendResult::Sent);
    CHECK(wire.receiver->deliver(frame));
    CHECK(nic.frames.size() == 2);

    // The backend's own link still counts: a gate that is up shows it.
    wire.link = false;
    CHECK_FALSE(gate.link_up());
    wire.receiver->link_state_changed();
    CHECK(nic.link_changes == 3);
}
