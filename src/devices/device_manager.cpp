#include "xover/devices/device_manager.hpp"

#include <fmt/format.h>

#include "nic_setup.hpp"
#include "sound_setup.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/error.hpp"

namespace xover::devices {

DeviceManager::DeviceManager(const vmm::VmConfig& config)
    : vm_name_(config.name),
      consent_group_(config.consent_group),
      broker_(config.broker.value_or(crossover::default_broker_path())) {}

std::unique_ptr<vmm::PciDevice> DeviceManager::make_nic(const vmm::NicConfig& nic, vmm::NicContext& context) {
    // Validation gives every NIC a MAC; this one only serves configs that
    // skipped it.
    net::MacAddress mac =
        nic.mac ? *nic.mac : net::MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, std::uint8_t(0x56 + context.index)}};
    NicSetup setup{nic, mac, fmt::format("{}.nic{}", context.vm_name, context.index), broker_, agent_, carriers_};
    std::unique_ptr<vmm::PciDevice> device;
    if (std::holds_alternative<net::VhostUserSpec>(nic.backend)) return make_vhost_user_net_nic(setup, context);
    switch (nic.model) {
        case vmm::NicModel::E1000: device = make_e1000_nic(setup, context); break;
        case vmm::NicModel::VirtioNet: device = make_virtio_net_nic(setup, context); break;
    }
    if (!device) throw Error("NIC model {} has no builder", int(nic.model));
    if (!nic.crossover.empty()) ++crossover_nics_;
    return device;
}

vmm::Machine::NicFactory DeviceManager::nic_factory() {
    return [this](const vmm::NicConfig& nic, vmm::NicContext& context) { return make_nic(nic, context); };
}

std::unique_ptr<vmm::PciDevice> DeviceManager::make_sound(const vmm::SoundConfig& sound, vmm::NicContext& context) {
    const std::string name = fmt::format("{}.snd{}", context.vm_name, context.index);
    SoundSetup setup = prepare_sound(sound, name, agent_);
    if (setup.crossover) ++crossover_sounds_;
    switch (sound.model) {
        case vmm::SoundModel::VirtioSnd: return make_virtio_snd(std::move(setup), context);
    }
    throw Error("sound model {} has no builder", int(sound.model));
}

vmm::Machine::SoundFactory DeviceManager::sound_factory() {
    return [this](const vmm::SoundConfig& sound, vmm::NicContext& context) { return make_sound(sound, context); };
}

void DeviceManager::register_crossover(vmm::EventLoop& loop) {
    if (crossover_nics_ == 0 && crossover_sounds_ == 0) return;
    agent_.register_vm(vm_name_, consent_group_, broker_, loop);
}

}  // namespace xover::devices
