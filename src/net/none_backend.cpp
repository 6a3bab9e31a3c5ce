#include "none_backend.hpp"


namespace xover::net {
namespace {

// The backend's counters (net/counter_set.hpp).
#define XOVER_NONE_BACKEND_COUNTERS(X, V)                             \
    X(tx_dropped, "frames the guest sent (no backend: all dropped)")  \
    X(tx_dropped_bytes, "bytes of tx_dropped")
struct Stats {
    XOVER_COUNTER_SET(XOVER_NONE_BACKEND_COUNTERS, "", Counter)
};

class NoneBackend final : public Backend {
public:
    void start(vmm::EventLoop&, FrameReceiver&, std::function<void()>) override {}
    SendResult send(std::span<const std::uint8_t> frame) override {
        stats_.tx_dropped.add();
        stats_.tx_dropped_bytes.add(frame.size());
        return SendResult::Dropped;
    }
    void rx_space_available() override {}
    Counters counters() const override {
        Counters out;
        stats_.append_to(out);
        return out;
    }
    std::string describe() const override { return "none"; }

private:
    Stats stats_;
};

}  // namespace

std::unique_ptr<Backend> make_none_backend() { return std::make_unique<NoneBackend>(); }

}  // namespace xover::net
