// Private to src/devices: the device a vhost-user session runs while both
// of the front-end's rings are started (vhost_user_session.hpp). xover's
// own VirtioNet on the front-end's memory, with the NIC's backend and, for
// a crossover NIC, its crossover attachment and its own broker agent, so
// the front-end's VM is registered under its name for as long as the
// device runs.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>

#include "vhost_user_driver.hpp"
#include "xover/devices/lasting_backend.hpp"
#include "xover/devices/vhost_user_session.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::devices {

class ServedNic final : public ServedDevice {
public:
    static constexpr unsigned kRings = 2;

    // Builds the device and starts it as a driver would; registers a
    // crossover NIC with the broker. Throws xover::Error when the device
    // refuses the features or a ring, or the broker refuses the VM.
    ServedNic(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory,
              LastingBackend& backend, std::uint64_t features, std::span<const ServedRing> rings);
    ~ServedNic() override;
    ServedNic(const ServedNic&) = delete;
    ServedNic& operator=(const ServedNic&) = delete;

    void kick(unsigned q) override;
    void call_changed(unsigned q, int fd) override;

private:
    virtio_net::VirtioPciDevice& model() override;
    vmm::StatsGroup stats() const override;

    class Parts;
    std::unique_ptr<Parts> parts_;
};

}  // namespace xover::devices
