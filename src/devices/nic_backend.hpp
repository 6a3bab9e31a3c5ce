// Private to src/devices: a NIC's backend (its physical path), owned ahead
// of the device model that sends through it.
#pragma once

#include <memory>

#include "nic_setup.hpp"
#include "xover/net/backend.hpp"

namespace xover::devices {

// The backend the NIC's spec names. The broker's slow-path switch
// (BrokerSpec) needs what only the VM knows: the broker socket, the VM's
// name, the NIC's index and MAC.
std::unique_ptr<net::Backend> make_nic_backend(const NicSetup& setup, const vmm::NicContext& context);

// Base-from-member: the backend must exist before the device that holds a
// reference to it, and is stopped before the device goes away.
struct BackendOwner {
    BackendOwner(const NicSetup& setup, const vmm::NicContext& context) : backend(make_nic_backend(setup, context)) {}
    std::unique_ptr<net::Backend> backend;
};

}  // namespace xover::devices
