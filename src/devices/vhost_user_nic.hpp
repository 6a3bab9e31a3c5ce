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

#include "xover/devices/lasting_backend.hpp"
#include "xover/devices/vhost_user_session.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::devices {

class ServedNic {
public:
    // One ring as the device is started on it: guest-physical addresses.
    struct Ring {
        std::uint16_t size = 0;
        std::uint64_t desc = 0, avail = 0, used = 0;
        std::uint16_t base = 0;  // SET_VRING_BASE: the first avail index to take
        int call = -1;           // the front-end's call eventfd (the session owns it)
    };
    static constexpr unsigned kRings = 2;

    // Builds the device and starts it as a driver would; registers a
    // crossover NIC with the broker. Throws xover::Error when the device
    // refuses the features or a ring, or the broker refuses the VM.
    ServedNic(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory,
              LastingBackend& backend, std::uint64_t features, const std::array<Ring, kRings>& rings);
    ~ServedNic();
    ServedNic(const ServedNic&) = delete;
    ServedNic& operator=(const ServedNic&) = delete;

    // The front-end kicked ring q (a queue notify).
    void kick(unsigned q);
    // Ring q's call fd is now `fd` (-1: none); the old one is about to close.
    void call_changed(unsigned q, int fd);
    // Runs `replace` (which swaps the memory table the device was built
    // on) with the device lock held, then translates the rings again.
    void replace_memory(const std::function<void()>& replace);
    // The device's counters as `stats: <vm>.nic0 key=value ...` (only
    // those not 0 unless `all`).
    void print_stats(std::FILE* out, bool all) const;

private:
    class Parts;
    std::unique_ptr<Parts> parts_;
};

}  // namespace xover::devices
