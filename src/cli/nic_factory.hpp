// Creates the NIC device model a NicConfig asks for. The e1000 and
// virtio-net models are wired in here (by the lead) as they land.
#pragma once

#include <memory>

#include "xover/vmm/config.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::cli {

std::unique_ptr<vmm::PciDevice> make_nic(const vmm::NicConfig& config, vmm::NicContext& context);

}  // namespace xover::cli
