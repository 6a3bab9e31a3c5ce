// Private to src/devices: what every device a vhost-user session serves
// shares (vhost_user_session.hpp) — the device interface the session runs,
// and how a session device is driven: xover's own virtio model on the
// front-end's memory, started through its transport registers as a
// virtio-pci driver would start it, its MSI-X vectors bound to the rings'
// call fds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <vector>

#include "xover/virtio_net/virtio_pci_device.hpp"
#include "xover/vmm/interrupts.hpp"
#include "xover/vmm/stats.hpp"

namespace xover::devices {

// One ring as the device is started on it: guest-physical addresses.
struct ServedRing {
    std::uint16_t size = 0;
    std::uint64_t desc = 0, avail = 0, used = 0;
    std::uint16_t base = 0;  // SET_VRING_BASE: the first avail index to take
    int call = -1;           // the front-end's call eventfd (the session owns it)
};

// The device a session runs while every ring of the front-end is started.
class ServedDevice {
public:
    virtual ~ServedDevice() = default;
    // The front-end kicked ring q (a queue notify).
    virtual void kick(unsigned q) = 0;
    // Ring q's call fd is now `fd` (-1: none); the old one is about to close.
    virtual void call_changed(unsigned q, int fd) = 0;
    // Runs `replace` (which swaps the memory table the device was built
    // on) with the device lock held, then translates the rings again.
    void replace_memory(const std::function<void()>& replace);
    // The device's counters as `stats: <group> key=value ...` (only those
    // not 0 unless `all`).
    void print_stats(std::FILE* out, bool all) const;

protected:
    // The virtio model the session drives.
    virtual virtio_net::VirtioPciDevice& model() = 0;
    // Its stats group: name, facts and counters.
    virtual vmm::StatsGroup stats() const = 0;
};

// A vhost-user device has no INTx pin: the front-end's interrupts are the
// call fds (MSI-X vectors here).
class NoIntx final : public vmm::IrqLine {
public:
    void set_level(bool) override {}
};

// The device's MSI-X vectors as the session binds them: "firing" a vector
// writes the call fd of the ring it serves. Vector 0 is the configuration
// vector (no fd); vector 1 + q is ring q's first call fd; a device whose
// peers hold those fds (a crossover NIC) moves a ring whose call fd changes
// to vector 1 + rings + q.
class CallFdVectors final : public vmm::MsiController {
public:
    explicit CallFdVectors(unsigned rings) : rings_(rings), fds_(1 + 2 * rings, -1) {}
    static constexpr unsigned kConfig = 0;
    static unsigned first_vector(unsigned ring) { return 1 + ring; }
    unsigned moved_vector(unsigned ring) const { return 1 + rings_ + ring; }
    unsigned count() const { return unsigned(fds_.size()); }

    void bind(unsigned vector, int fd) { fds_.at(vector) = fd; }
    void program(unsigned, std::uint64_t, std::uint32_t) override {}
    void fire(unsigned vector) override;
    int eventfd(unsigned vector) override { return vector < fds_.size() ? fds_[vector] : -1; }

private:
    unsigned rings_;
    std::vector<int> fds_;
};

// Drives a device's transport registers the way a virtio-pci driver would
// (virtio 1.2 §3.1.1 and §4.1.5): the vhost-user session already holds
// everything the driver negotiated with the front-end's device.
class RegisterDriver {
public:
    explicit RegisterDriver(virtio_net::VirtioPciDevice& device);

    // Reset, features, MSI-X on, each ring on vector first_vector(q),
    // DRIVER_OK. Throws xover::Error naming what the device refused.
    void start(std::uint64_t features, std::span<const ServedRing> rings, unsigned vectors);
    void set_ring_vector(unsigned q, unsigned vector);

private:
    void write(std::uint64_t offset, std::uint64_t value, unsigned width);
    std::uint8_t status();
    void write_status(std::uint8_t value);
    void enable_msix(unsigned vectors);

    virtio_net::VirtioPciDevice& device_;
    vmm::IoDevice& bar_;
};

}  // namespace xover::devices
