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
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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
    // Sound card `context.index` of the VM: the device and its backend.
    // Throws xover::Error with a one-line message.
    std::unique_ptr<vmm::PciDevice> make_sound(const vmm::SoundConfig& sound, vmm::NicContext& context);
    vmm::Machine::SoundFactory sound_factory();

    // After the machine built every NIC and sound card: connects to the
    // broker (starting one if none listens) and registers the crossover
    // NICs and sound cards; links then arrive on `loop`. Nothing without
    // crossover devices. Throws
    // xover::Error when the broker refuses (a duplicate VM name, say), so
    // the VM fails before any vCPU runs.
    void register_crossover(vmm::EventLoop& loop);

    // The VM's broker agent: its crossover NICs' peers and links.
    crossover::VmAgent& agent() { return agent_; }

    // The control API's operations (device_control.cpp); any thread.
    //
    // Links `peer` to (Link) or unlinks it from (Unlink) NIC `nic`, or
    // every crossover NIC when none is given: adds it to or removes it
    // from the NIC's static peers, and the broker applies the link rules
    // (a link needs the peer's consent; it comes up later, if at all).
    // False: no such crossover NIC. Throws xover::Error for a bad name.
    enum class PeerChange { Link, Unlink };
    bool change_peer(const std::string& peer, PeerChange change, std::optional<unsigned> nic = {});
    // The static peers NIC `nic` names (while its carrier is down too).
    std::vector<std::string> named_peers(unsigned nic) const;
    // The NIC's carrier (net/carrier_gate.hpp). Down also takes a crossover
    // NIC's links down (no peers and no auto at the broker meanwhile), as
    // an unplugged cable does both ends'; up restores its peers. False: no
    // such NIC.
    bool set_carrier(unsigned nic, bool up);
    std::optional<bool> carrier(unsigned nic) const { return carriers_.get(nic); }

private:
    std::string vm_name_;
    std::string consent_group_;  // set by `xover up` (vmm::VmConfig::consent_group)
    std::filesystem::path broker_;
    crossover::VmAgent agent_;
    NicCarriers carriers_;
    // Crossover NICs whose carrier is down: the peers and auto setting to
    // give back at carrier up (changed by change_peer meanwhile).
    struct Unplugged {
        std::vector<std::string> peers;
        bool auto_peer = false;
    };
    mutable std::mutex control_mutex_;
    std::map<unsigned, Unplugged> unplugged_;
    unsigned crossover_nics_ = 0;
    unsigned crossover_sounds_ = 0;
};

}  // namespace xover::devices
