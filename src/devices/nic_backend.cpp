#include "nic_backend.hpp"

#include <variant>

#include "xover/crossover/broker_backend.hpp"

namespace xover::devices {

std::unique_ptr<net::Backend> make_nic_backend(const NicSetup& setup, const vmm::NicContext& context) {
    if (!std::holds_alternative<net::BrokerSpec>(setup.config.backend)) return net::make_backend(setup.config.backend);
    return crossover::make_broker_backend(setup.broker, context.vm_name, context.index, setup.mac);
}

}  // namespace xover::devices
