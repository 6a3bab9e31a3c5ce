// Private to src/devices: the sound card a vhost-user session runs while
// the front-end's four rings are started (vhost_user_session.hpp): xover's
// own VirtioSnd on the front-end's memory, its stream clocks, and either
// the process's sound backend or, for a crossover card, its cable and its
// own broker agent, so the front-end's VM is registered under its name for
// as long as the card runs.
#pragma once

#include <memory>
#include <span>

#include "vhost_user_driver.hpp"
#include "xover/devices/vhost_user_session.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::devices {

class ServedSound final : public ServedDevice {
public:
    // Builds the card and starts it as a driver would; registers a
    // crossover card with the broker. Throws xover::Error when the card
    // refuses the features or a ring, or the broker refuses the VM.
    ServedSound(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory, std::uint64_t features,
                std::span<const ServedRing> rings);
    ~ServedSound() override;

    void kick(unsigned q) override;
    void call_changed(unsigned q, int fd) override;

private:
    virtio_net::VirtioPciDevice& model() override;
    vmm::StatsGroup stats() const override;

    class Parts;
    std::unique_ptr<Parts> parts_;
};

}  // namespace xover::devices
