#include "xover/devices/lasting_backend.hpp"

#include <variant>

#include "nic_backend.hpp"
#include "xover/error.hpp"

namespace xover::devices {

class LastingBackend::Attachment final : public net::Backend {
public:
    explicit Attachment(LastingBackend& owner) : owner_(owner) {}
    ~Attachment() override {
        if (started_) {
            owner_.device_ = nullptr;
            owner_.device_tx_ready_ = nullptr;
        }
    }
    void start(vmm::EventLoop&, net::FrameReceiver& receiver, std::function<void()> tx_ready) override {
        if (owner_.device_) throw Error("{}: another device is attached", describe());
        owner_.device_ = &receiver;
        owner_.device_tx_ready_ = std::move(tx_ready);
        started_ = true;
    }
    SendResult send(std::span<const std::uint8_t> frame) override { return owner_.inner_->send(frame); }
    void rx_space_available() override { owner_.inner_->rx_space_available(); }
    bool link_up() const override { return owner_.inner_->link_up(); }
    net::Counters counters() const override {
        net::Counters out = owner_.inner_->counters();
        out.emplace_back("rx_dropped_no_device", owner_.dropped_no_device_);
        return out;
    }
    std::string describe() const override { return owner_.inner_->describe(); }

private:
    LastingBackend& owner_;
    bool started_ = false;
};

LastingBackend::LastingBackend(std::unique_ptr<net::Backend> inner, vmm::EventLoop& loop) : inner_(std::move(inner)) {
    inner_->start(loop, *this, [this] {
        if (device_tx_ready_) device_tx_ready_();
    });
}

LastingBackend::LastingBackend(std::function<std::unique_ptr<net::Backend>()> make_per_session)
    : make_per_session_(std::move(make_per_session)) {}

LastingBackend::~LastingBackend() = default;

std::unique_ptr<net::Backend> LastingBackend::attach() {
    if (make_per_session_) return make_per_session_();
    return std::make_unique<Attachment>(*this);
}

bool LastingBackend::deliver(std::span<const std::uint8_t> frame) {
    if (device_) return device_->deliver(frame);
    ++dropped_no_device_;
    return true;  // taken: no driver to give it to
}

void LastingBackend::link_state_changed() {
    if (device_) device_->link_state_changed();
}

std::unique_ptr<LastingBackend> make_lasting_backend(const net::BackendSpec& spec, const std::string& vm_name,
                                                     const net::MacAddress& mac, const std::filesystem::path& broker,
                                                     vmm::EventLoop& loop) {
    if (std::holds_alternative<net::BrokerSpec>(spec))
        return std::make_unique<LastingBackend>([=] { return make_nic_backend(spec, broker, vm_name, 0, mac); });
    return std::make_unique<LastingBackend>(make_nic_backend(spec, broker, vm_name, 0, mac), loop);
}

}  // namespace xover::devices
