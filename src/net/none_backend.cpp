#include "none_backend.hpp"

#include "counter.hpp"

namespace xover::net {
namespace {

class NoneBackend final : public Backend {
public:
    void start(vmm::EventLoop&, FrameReceiver&, std::function<void()>) override {}
    SendResult send(std::span<const std::uint8_t> frame) override {
        tx_dropped_.add();
        tx_dropped_bytes_.add(frame.size());
        return SendResult::Dropped;
    }
    void rx_space_available() override {}
    Counters counters() const override {
        return {{"tx_dropped", tx_dropped_.get()}, {"tx_dropped_bytes", tx_dropped_bytes_.get()}};
    }
    std::string describe() const override { return "none"; }

private:
    Counter tx_dropped_;
    Counter tx_dropped_bytes_;
};

}  // namespace

std::unique_ptr<Backend> make_none_backend() { return std::make_unique<NoneBackend>(); }

}  // namespace xover::net
