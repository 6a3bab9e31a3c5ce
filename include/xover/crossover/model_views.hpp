// The queue views of each NIC model, as the crossover engine gets them: it
// includes no model header (scripts/check-layers.sh), so it asks here for
// the views of a model named by the broker (a peer) or by the page's model
// id (its own NIC).
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "xover/nic/rx_view.hpp"
#include "xover/nic/shared_nic_state.hpp"
#include "xover/nic/tx_view.hpp"

namespace xover::crossover {

// "e1000" or "virtio-net", the model names a NIC registers with; nullopt
// for anything else.
std::optional<nic::ModelId> model_by_name(std::string_view name);
// nullptr for an unknown model.
std::unique_ptr<nic::RxView> make_rx_view(nic::ModelId model);
std::unique_ptr<nic::TxView> make_tx_view(nic::ModelId model);

}  // namespace xover::crossover
