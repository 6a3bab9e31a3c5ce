#include "nic_backend.hpp"

#include <variant>

#include "xover/crossover/broker_backend.hpp"

namespace xover::devices {

std::unique_ptr<net::Backend> make_nic_backend(const NicSetup& setup, const vmm::NicContext& context) {
    return make_nic_backend(setup.config.backend, setup.broker, context.vm_name, context.index, setup.mac);
}

std::unique_ptr<net::Backend> make_nic_backend(const net::BackendSpec& spec, const std::filesystem::path& broker,
                                               const std::string& vm_name, unsigned index,
                                               const net::MacAddress& mac) {
    if (!std::holds_alternative<net::BrokerSpec>(spec)) return net::make_backend(spec);
    return crossover::make_broker_backend(broker, vm_name, index, mac);
}

}  // namespace xover::devices
