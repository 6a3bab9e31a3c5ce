#include "vhost_user_sound.hpp"

#include <fmt/format.h>

#include "sound_crossover.hpp"
#include "sound_setup.hpp"
#include "stream_clocks.hpp"
#include "xover/crossover/vm_agent.hpp"
#include "xover/error.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"
#include "xover/vmm/stats.hpp"

namespace xover::devices {

using virtio_snd::VirtioSnd;

class ServedSound::Parts {
public:
    Parts(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory)
        : config_(config),
          name_(fmt::format("{}.snd0", config.vm_name)),
          setup_(config.sound->crossover ? prepare_sound(*config.sound, name_, agent_)
                                         : SoundSetup{*config.sound, name_, nullptr}),
          card_(memory, vectors_, intx_, backend(), config.sound->format),
          clocks_(loop, card_, name_) {}

    sound::Backend& backend() {
        if (setup_.backend) return *setup_.backend;
        if (!config_.sound_backend) throw Error("{}: no sound backend", name_);
        return *config_.sound_backend;
    }

    const VhostUserConfig& config_;
    std::string name_;
    crossover::VmAgent agent_;
    SoundSetup setup_;
    NoIntx intx_;
    CallFdVectors vectors_{VirtioSnd::kQueueCount};
    VirtioSnd card_;
    StreamClocks clocks_;  // last: stops the clocks first
};

ServedSound::ServedSound(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory,
                         std::uint64_t features, std::span<const ServedRing> rings)
    : parts_(std::make_unique<Parts>(config, loop, memory)) {
    Parts& p = *parts_;
    for (unsigned q = 0; q < rings.size(); ++q) p.vectors_.bind(CallFdVectors::first_vector(q), rings[q].call);
    if (p.setup_.crossover) {
        // Registered before the card starts; no broker is started from here
        // (the back-end runs under seccomp, which forbids fork and exec).
        p.setup_.crossover->attach(p.card_, p.agent_, 0);
        p.agent_.register_vm(config.vm_name, config.consent_group, config.broker, loop, false);
    }
    RegisterDriver(p.card_).start(features, rings, p.vectors_.count());
}

ServedSound::~ServedSound() = default;

void ServedSound::kick(unsigned q) { parts_->card_.queue_notify(q); }

// Nobody else holds a card's call fds: the ring's vector just moves on.
void ServedSound::call_changed(unsigned q, int fd) { parts_->vectors_.bind(CallFdVectors::first_vector(q), fd); }

virtio_net::VirtioPciDevice& ServedSound::model() { return parts_->card_; }

vmm::StatsGroup ServedSound::stats() const {
    const Parts& p = *parts_;
    vmm::StatsGroup group;
    group.name = "snd0-virtio-snd";
    group.facts.emplace_back("name", p.config_.vm_name);
    for (auto& [name, value] : p.card_.counters()) group.counters.emplace_back(name, value);
    p.clocks_.append_counters(group.counters);
    return group;
}

}  // namespace xover::devices
