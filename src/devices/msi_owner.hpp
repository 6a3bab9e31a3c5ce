// Private to src/devices: base-from-member for a NIC whose MSI-X
// controller must exist before the device model that fires it (and whose
// vectors' eventfds a crossover or vhost-user wiring needs first).
#pragma once

#include "xover/vmm/interrupts.hpp"
#include "xover/vmm/nic_context.hpp"

namespace xover::devices {

struct MsiOwner {
    MsiOwner(vmm::NicContext& context, unsigned vectors) : msi(context.make_msi(vectors)) {}
    vmm::MsiController& msi;
};

}  // namespace xover::devices
