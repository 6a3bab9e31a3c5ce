// Private to src/devices: a NIC's backend (its physical path), owned ahead
// of the device model that sends through it.
#pragma once

#include <memory>

#include "nic_setup.hpp"
#include "xover/net/backend.hpp"
#include "xover/net/carrier_gate.hpp"

namespace xover::devices {

// The backend the NIC's spec names. The broker's slow-path switch
// (BrokerSpec) needs what only the VM knows: the broker socket, the VM's
// name, the NIC's index and MAC.
std::unique_ptr<net::Backend> make_nic_backend(const NicSetup& setup, const vmm::NicContext& context);
// The same from its parts (a vhost-user back-end's lasting backend).
std::unique_ptr<net::Backend> make_nic_backend(const net::BackendSpec& spec, const std::filesystem::path& broker,
                                               const std::string& vm_name, unsigned index,
                                               const net::MacAddress& mac);

// Base-from-member: the backend must exist before the device that holds a
// reference to it, and is stopped before the device goes away. The device
// sends through the operator's carrier switch (net::CarrierGate), which the
// control API reaches through setup.carriers while the NIC lives.
struct BackendOwner {
    BackendOwner(const NicSetup& setup, const vmm::NicContext& context)
        : backend(std::make_unique<net::CarrierGate>(make_nic_backend(setup, context))),
          carriers(setup.carriers),
          index(context.index) {
        carriers.add(index, *backend);
    }
    ~BackendOwner() { carriers.remove(index); }
    // Before the backend goes (the device's destructor resets it early).
    void stop_backend() {
        carriers.remove(index);
        backend.reset();
    }
    std::unique_ptr<net::CarrierGate> backend;
    NicCarriers& carriers;
    unsigned index;
};

}  // namespace xover::devices
