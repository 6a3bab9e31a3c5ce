#include "sound_setup.hpp"

#include "sound_crossover.hpp"
#include "xover/error.hpp"

namespace xover::devices {

SoundSetup prepare_sound(const vmm::SoundConfig& sound, std::string name, crossover::VmAgent& agent) {
    SoundSetup setup{sound, std::move(name), nullptr};
    if (sound.crossover) {
        // Validation gives a crossover card its format.
        auto wire = std::make_unique<SoundCrossover>(setup.name, *sound.crossover,
                                                     sound.format.value_or(vmm::kDefaultCrossoverFormat));
        setup.crossover = wire.get();
        setup.agent = &agent;
        setup.backend = std::move(wire);
        return setup;
    }
    try {
        setup.backend = sound::make_backend(sound.backend);
    } catch (const Error& e) {
        throw Error("--sound {}: {}", vmm::to_string(sound.model), e.what());
    }
    return setup;
}

}  // namespace xover::devices
