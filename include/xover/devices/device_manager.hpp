// The composition root of a VM's NICs: from the VM's NicConfigs it builds
// each NIC's backend, device model and KVM plumbing and, for a NIC with a
// crossover, its DMA window and crossover attachment; once every NIC is
// built, it registers the VM's crossover NICs with the broker, once.
//
// The machine owns the devices (it calls make_nic() for each NIC in
// order); this object owns what they share, the broker agent, so it must
// be made before the machine and outlive it:
//
//   devices::DeviceManager devices(config);
//   vmm::Machine machine(config, devices.nic_factory());
//   devices.register_crossover(machine.loop());
//   machine.run();
#pragma once

#include <filesystem>
#include <memory>

#include "xover/crossover/vm_agent.hpp"
#include "xover/devices/nic_carriers.hpp"
#include "xover/vmm/config.hpp"
#include "xover/vmm/machine.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::devices {

class DeviceManager {
public:
    explicit DeviceManager(const vmm::VmConfig& config);
    DeviceManager(const DeviceManager&) = delete;
    DeviceManager& operator=(const DeviceManager&) = delete;

    // NIC `context.index` of the VM, as `nic` describes it. Throws
    // xover::Error with a one-line message.
    std::unique_ptr<vmm::PciDevice> make_nic(const vmm::NicConfig& nic, vmm::NicContext& context);
    // make_nic() as the machine takes it.
    vmm::Machine::NicFactory nic_factory();

    // After the machine built every NIC: connects to the broker (starting
    // one if none listens) and registers the crossover NICs; links then
    // arrive on `loop`. Nothing without crossover NICs. Throws
    // xover::Error when the broker refuses (a duplicate VM name, say), so
    // the VM fails before any vCPU runs.
    void register_crossover(vmm::EventLoop& loop);

    // The NICs' carrier switches, by index (the control API's).
    NicCarriers& carriers() { return carriers_; }
    // The VM's broker agent: its crossover NICs' peers and links (the
    // control API links and unlinks through it, VmAgent::set_peers).
    crossover::VmAgent& agent() { return agent_; }

private:
    std::string vm_name_;
    std::string consent_group_;  // set by `xover up` (vmm::VmConfig::consent_group)
    std::filesystem::path broker_;
    crossover::VmAgent agent_;
    NicCarriers carriers_;
    unsigned crossover_nics_ = 0;
};

}  // namespace xover::devices
