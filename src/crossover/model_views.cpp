#include "xover/crossover/model_views.hpp"

namespace xover::crossover {

std::optional<nic::ModelId> model_by_name(std::string_view name) {
    if (name == "e1000") return nic::ModelId::E1000;
    if (name == "virtio-net") return nic::ModelId::VirtioNet;
    return std::nullopt;
}

std::unique_ptr<nic::RxView> make_rx_view(nic::ModelId model) {
    switch (model) {
    case nic::ModelId::E1000: return e1000::make_rx_view();
    case nic::ModelId::VirtioNet: return virtio_net::make_rx_view();
    }
    return nullptr;
}

std::unique_ptr<nic::TxView> make_tx_view(nic::ModelId model) {
    switch (model) {
    case nic::ModelId::E1000: return e1000::make_tx_view();
    case nic::ModelId::VirtioNet: return virtio_net::make_tx_view();
    }
    return nullptr;
}

}  // namespace xover::crossover
