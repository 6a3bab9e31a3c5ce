// Private to src/devices: what a NIC builder gets from the device manager
// besides the machine's NicContext, and the builders themselves.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "xover/crossover/vm_agent.hpp"
#include "xover/devices/nic_carriers.hpp"
#include "xover/net/mac_address.hpp"
#include "xover/vmm/config.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::devices {

struct NicSetup {
    const vmm::NicConfig& config;
    net::MacAddress mac;
    std::string name;                     // "<vm>.nic<index>": logs, the state page's name
    const std::filesystem::path& broker;  // the VM's broker socket
    crossover::VmAgent& agent;            // the VM's one broker connection
    NicCarriers& carriers;                // where the NIC's carrier switch goes (the control API's)
};

std::unique_ptr<vmm::PciDevice> make_e1000_nic(const NicSetup& setup, vmm::NicContext& context);
std::unique_ptr<vmm::PciDevice> make_virtio_net_nic(const NicSetup& setup, vmm::NicContext& context);
// backend=vhost-user: the queues go to an external back-end.
std::unique_ptr<vmm::PciDevice> make_vhost_user_net_nic(const NicSetup& setup, vmm::NicContext& context);

}  // namespace xover::devices
