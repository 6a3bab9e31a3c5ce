// Test doubles shared by the NIC model tests (e1000, virtio-net): an INTx
// line that records its level, and a backend that records what the NIC
// sends and can be told to answer Busy/Dropped or report link down.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "xover/net/backend.hpp"
#include "xover/vmm/interrupts.hpp"

namespace xover::test {

class FakeIrqLine : public vmm::IrqLine {
public:
    void set_level(bool high) override {
        if (high && !level) ++raised;
        level = high;
    }
    bool level = false;
    unsigned raised = 0;  // low→high transitions seen
};

class FakeBackend : public net::Backend {
public:
    void start(vmm::EventLoop&, net::FrameReceiver& r, std::function<void()> ready) override {
        receiver = &r;
        tx_ready = std::move(ready);
    }
    SendResult send(std::span<const std::uint8_t> frame) override {
        if (busy_after == 0) {
            result = SendResult::Busy;
            busy_after = -1;
        } else if (busy_after > 0) {
            --busy_after;
        }
        if (result == SendResult::Sent) sent.emplace_back(frame.begin(), frame.end());
        else ++refused;
        return result;
    }
    void rx_space_available() override { ++rx_space_calls; }
    bool link_up() const override { return link; }
    net::Counters counters() const override { return {{"sent", sent.size()}}; }
    std::string describe() const override { return "fake"; }

    SendResult result = SendResult::Sent;  // what send() answers next
    int busy_after = -1;                   // >= 0: switch to Busy after this many more sends
    bool link = true;
    std::vector<std::vector<std::uint8_t>> sent;
    unsigned refused = 0;
    unsigned rx_space_calls = 0;
    net::FrameReceiver* receiver = nullptr;
    std::function<void()> tx_ready;
};

}  // namespace xover::test
