// Private to src/devices: what the device manager hands a sound card's
// builder: its name for logs and its opened backend.
#pragma once

#include <memory>
#include <string>

#include "xover/crossover/vm_agent.hpp"
#include "xover/sound/backend.hpp"
#include "xover/vmm/config.hpp"
#include "xover/vmm/nic_context.hpp"
#include "xover/vmm/pci_device.hpp"

namespace xover::devices {

class SoundCrossover;

struct SoundSetup {
    const vmm::SoundConfig& config;
    std::string name;  // "VM.snd0"
    std::unique_ptr<sound::Backend> backend;  // the builder takes it
    // Set for a crossover card: `backend` is this, whose jacks and broker
    // registration the builder attaches to the card it makes.
    SoundCrossover* crossover = nullptr;
    crossover::VmAgent* agent = nullptr;
};

// The backend card `sound` plays into: a crossover cable (registered with
// `agent` when the card is attached to it) or what its spec names, opened.
// Throws xover::Error with a one-line message.
SoundSetup prepare_sound(const vmm::SoundConfig& sound, std::string name, crossover::VmAgent& agent);

std::unique_ptr<vmm::PciDevice> make_virtio_snd(SoundSetup setup, vmm::NicContext& context);

}  // namespace xover::devices
