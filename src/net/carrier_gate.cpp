#include "xover/net/carrier_gate.hpp"

namespace xover::net {

void CarrierGate::start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()> tx_ready) {
    receiver_ = &receiver;
    inner_->start(loop, *this, std::move(tx_ready));
}

void CarrierGate::set_carrier(bool up) {
    if (up_.exchange(up, std::memory_order_acq_rel) == up) return;
    if (receiver_) receiver_->link_state_changed();
}

Backend::SendResult CarrierGate::send(std::span<const std::uint8_t> frame) {
    if (!carrier()) {
        tx_dropped_carrier_.add();
        return SendResult::Dropped;
    }
    return inner_->send(frame);
}

bool CarrierGate::deliver(std::span<const std::uint8_t> frame) {
    if (!carrier()) {
        rx_dropped_carrier_.add();
        return true;  // taken: gone, as on an unplugged cable
    }
    return receiver_->deliver(frame);
}

void CarrierGate::link_state_changed() {
    if (receiver_) receiver_->link_state_changed();
}

Counters CarrierGate::counters() const {
    Counters c = inner_->counters();
    c.emplace_back("tx_dropped_carrier", tx_dropped_carrier_.get());
    c.emplace_back("rx_dropped_carrier", rx_dropped_carrier_.get());
    return c;
}

}  // namespace xover::net
