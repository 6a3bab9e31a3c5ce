// A NIC's carrier as an operator sets it (the control API's PUT
// /nics/{id}/carrier): a switch between the NIC and its backend. Down
// looks like an unplugged cable: the backend's link reads down (the guest
// gets its link-status interrupt), frames the guest sends are dropped, and
// frames arriving from the wire are dropped, each counted. Up passes
// everything through again. A crossover NIC's links are taken down apart
// from this (crossover/vm_agent.hpp), so nothing reaches its rings then.
#pragma once

#include <atomic>
#include <memory>

#include "xover/net/backend.hpp"
#include "xover/net/counter_set.hpp"

namespace xover::net {

class CarrierGate final : public Backend, private FrameReceiver {
public:
    explicit CarrierGate(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

    // Down or up; tells the NIC its link state changed. Any thread but
    // one inside the NIC's own send() (the NIC's lock is taken).
    void set_carrier(bool up);
    bool carrier() const { return up_.load(std::memory_order_acquire); }

    // Backend
    void start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()> tx_ready) override;
    SendResult send(std::span<const std::uint8_t> frame) override;
    void rx_space_available() override { inner_->rx_space_available(); }
    bool link_up() const override { return carrier() && inner_->link_up(); }
    Counters counters() const override;
    std::string describe() const override { return inner_->describe(); }

private:
    // FrameReceiver: frames from the inner backend.
    bool deliver(std::span<const std::uint8_t> frame) override;
    void link_state_changed() override;

    std::unique_ptr<Backend> inner_;
    FrameReceiver* receiver_ = nullptr;
    std::atomic<bool> up_{true};
    Counter tx_dropped_carrier_, rx_dropped_carrier_;
};

}  // namespace xover::net
