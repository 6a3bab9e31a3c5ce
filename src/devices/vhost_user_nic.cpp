#include "vhost_user_nic.hpp"

#include <sys/eventfd.h>

#include <cstring>

#include <fmt/format.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <spdlog/spdlog.h>

#include "nic_crossover.hpp"
#include "nic_setup.hpp"
#include "xover/byte_order.hpp"
#include "xover/crossover/vm_agent.hpp"
#include "xover/devices/nic_carriers.hpp"
#include "xover/error.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/vmm/config_parser.hpp"
#include "xover/vmm/stats.hpp"

namespace xover::devices {

namespace {

using virtio_net::VirtioNet;

// A vhost-user device has no INTx pin: the front-end's interrupts are the
// call fds (MSI-X vectors here).
class NoIntx final : public vmm::IrqLine {
public:
    void set_level(bool) override {}
};

// The device's MSI-X vectors as the session binds them: "firing" a vector
// writes the call fd of the ring it serves. Vectors 1 and 2 are the rings'
// first call fds, the ones crossover peers get (VirtioNet's
// kCrossoverRxVector / kCrossoverTxVector); a ring whose call fd changes
// later moves to vector 3 + ring, which peers hold no fd for, so their
// interrupts for it come through our doorbell (nic/peer_interrupt.hpp).
class CallFdVectors final : public vmm::MsiController {
public:
    static constexpr unsigned kCount = 5;
    static constexpr unsigned kConfig = 0;
    static unsigned first_vector(unsigned ring) { return 1 + ring; }
    static unsigned moved_vector(unsigned ring) { return 3 + ring; }

    void bind(unsigned vector, int fd) { fds_.at(vector) = fd; }
    void program(unsigned, std::uint64_t, std::uint32_t) override {}
    void fire(unsigned vector) override {
        if (vector < kCount && fds_[vector] >= 0) (void)::eventfd_write(fds_[vector], 1);
    }
    int eventfd(unsigned vector) override { return vector < kCount ? fds_[vector] : -1; }

private:
    std::array<int, kCount> fds_{-1, -1, -1, -1, -1};
};

static_assert(VirtioNet::kCrossoverRxVector == 1 && VirtioNet::kCrossoverTxVector == 2,
              "CallFdVectors binds the rings' first call fds to the crossover's vectors");

// Base-from-member: the session's attachment to the process's lasting
// backend exists before the model that sends through it.
struct AttachedBackend {
    explicit AttachedBackend(LastingBackend& lasting) : backend(lasting.attach()) {}
    std::unique_ptr<net::Backend> backend;
};

// The NIC: its attachment to the backend, the model and, with a crossover,
// its crossover attachment.
class ServedVirtioNet final : private AttachedBackend, public VirtioNet {
public:
    ServedVirtioNet(const NicSetup& setup, vmm::NicContext& context, CallFdVectors& vectors, LastingBackend& lasting)
        : AttachedBackend(lasting), VirtioNet(context.memory, vectors, context.intx, *backend, setup.mac) {
        if (!setup.config.crossover.empty()) {
            crossover_ = std::make_unique<NicCrossover<VirtioNet>>(
                *this, setup, context, *backend, vectors.eventfd(kCrossoverRxVector),
                vectors.eventfd(kCrossoverTxVector), kNoWindowBar, [](unsigned, const vmm::PciBar&) {
                    throw Error("a vhost-user NIC has no DMA window");
                });
        }
        start_backend(*backend, context.loop, *this, crossover_.get());
    }
    ~ServedVirtioNet() override {
        crossover_.reset();
        backend.reset();  // detached before the model goes
    }

private:
    static constexpr unsigned kNoWindowBar = 2;  // never defined: copy mode only
    std::unique_ptr<NicCrossover<VirtioNet>> crossover_;
};

// Drives the device's transport registers the way a virtio-pci driver
// would (virtio 1.2 §3.1.1 and §4.1.5): the vhost-user session already
// holds everything the driver negotiated with QEMU's device.
class RegisterDriver {
public:
    explicit RegisterDriver(VirtioNet& device) : device_(device), bar_(*device.bar(VirtioNet::kBar).handler) {}

    void start(std::uint64_t features, const std::array<ServedNic::Ring, ServedNic::kRings>& rings) {
        write_status(0);  // reset
        write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        for (unsigned half = 0; half < 2; ++half) {
            write(VIRTIO_PCI_COMMON_GFSELECT, half, 4);
            write(VIRTIO_PCI_COMMON_GF, std::uint32_t(features >> (32 * half)), 4);
        }
        write_status(status() | VIRTIO_CONFIG_S_FEATURES_OK);
        if (!(status() & VIRTIO_CONFIG_S_FEATURES_OK))
            throw Error("the device refused the front-end's features {:#x}", features);
        enable_msix();
        write(VIRTIO_PCI_COMMON_MSIX, CallFdVectors::kConfig, 2);
        for (unsigned q = 0; q < ServedNic::kRings; ++q) {
            const ServedNic::Ring& r = rings[q];
            write(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
            write(VIRTIO_PCI_COMMON_Q_SIZE, r.size, 2);
            write(VIRTIO_PCI_COMMON_Q_MSIX, CallFdVectors::first_vector(q), 2);
            write(VIRTIO_PCI_COMMON_Q_DESCLO, r.desc, 8);
            write(VIRTIO_PCI_COMMON_Q_AVAILLO, r.avail, 8);
            write(VIRTIO_PCI_COMMON_Q_USEDLO, r.used, 8);
            write(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
            if (status() & VIRTIO_CONFIG_S_NEEDS_RESET)
                throw Error("the device refused ring {} (size {}, desc {:#x}, avail {:#x}, used {:#x})", q, r.size,
                            r.desc, r.avail, r.used);
            device_.start_queue_at(q, r.base);
        }
        write_status(status() | VIRTIO_CONFIG_S_DRIVER_OK);
        if (!(status() & VIRTIO_CONFIG_S_DRIVER_OK) || (status() & VIRTIO_CONFIG_S_NEEDS_RESET))
            throw Error("the device did not start: a ring is malformed (virtio status {:#x}: DEVICE_NEEDS_RESET)",
                        status());
    }

    void set_ring_vector(unsigned q, unsigned vector) {
        write(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
        write(VIRTIO_PCI_COMMON_Q_MSIX, vector, 2);
    }

private:
    void write(std::uint64_t offset, std::uint64_t value, unsigned width) {
        std::uint8_t bytes[8] = {};
        store_le(std::span(bytes, width), value);
        bar_.write(VirtioNet::kCommonOffset + offset, std::span<const std::uint8_t>(bytes, width));
    }
    std::uint8_t status() {
        std::uint8_t value = 0;
        bar_.read(VirtioNet::kCommonOffset + VIRTIO_PCI_COMMON_STATUS, std::span(&value, 1));
        return value;
    }
    void write_status(std::uint8_t value) { write(VIRTIO_PCI_COMMON_STATUS, value, 1); }

    // MSI-X on (the capability's enable bit) and every vector unmasked
    // (table entries reset masked), as a driver that requests vectors does.
    void enable_msix() {
        constexpr std::uint8_t kCapMsix = 0x11;
        constexpr std::uint16_t kMsixEnable = 1 << 15;
        std::uint8_t next = 0;
        device_.config_read(0x34, std::span(&next, 1));
        for (unsigned hops = 0; next != 0 && hops < 48; ++hops) {
            std::uint8_t header[2] = {};
            device_.config_read(next, header);
            if (header[0] == kCapMsix) {
                std::uint8_t control[2] = {};
                store_le(control, kMsixEnable);
                device_.config_write(next + 2u, control);
                break;
            }
            next = header[1];
        }
        for (unsigned v = 0; v < CallFdVectors::kCount; ++v) {
            std::uint8_t entry[16] = {};
            store_le(std::span(entry, 4), 0xfee00000u);  // any address: CallFdVectors ignores it
            store_le(std::span(entry + 8, 4), v);
            bar_.write(VirtioNet::kMsixTableOffset + 16u * v, entry);
        }
    }

    VirtioNet& device_;
    vmm::IoDevice& bar_;
};

}  // namespace

class ServedNic::Parts {
public:
    Parts(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory)
        : config_(config),
          mac_(config.nic.mac ? *config.nic.mac : vmm::default_mac(config.vm_name, 0)),
          context_{.vm_name = config.vm_name,
                   .index = 0,
                   .pci_slot = 0,
                   .memory = memory,
                   .loop = loop,
                   .intx = intx_,
                   .vm = nullptr,
                   .memory_slots = nullptr,
                   .make_msi = [this](unsigned) -> vmm::MsiController& { return vectors_; }},
          setup_{config.nic, mac_, fmt::format("{}.nic0", config.vm_name), config.broker, agent_, carriers_} {}

    const VhostUserConfig& config_;
    net::MacAddress mac_;
    crossover::VmAgent agent_;
    NicCarriers carriers_;
    NoIntx intx_;
    CallFdVectors vectors_;
    vmm::NicContext context_;
    NicSetup setup_;
    std::unique_ptr<ServedVirtioNet> device_;  // last: goes first
};

ServedNic::ServedNic(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory,
                     LastingBackend& backend, std::uint64_t features, const std::array<Ring, kRings>& rings)
    : parts_(std::make_unique<Parts>(config, loop, memory)) {
    Parts& p = *parts_;
    for (unsigned q = 0; q < kRings; ++q) p.vectors_.bind(CallFdVectors::first_vector(q), rings[q].call);
    p.device_ = std::make_unique<ServedVirtioNet>(p.setup_, p.context_, p.vectors_, backend);
    // Registered before the device starts, so that the links to peers
    // already registered exist when it first walks the TX ring: frames the
    // guest queued meanwhile go to them, not to the backend. (No broker is
    // started from here: the back-end runs under seccomp, which forbids
    // fork and exec.)
    if (!config.nic.crossover.empty())
        p.agent_.register_vm(config.vm_name, config.consent_group, config.broker, loop, false);
    RegisterDriver(*p.device_).start(features, rings);
}

ServedNic::~ServedNic() = default;

void ServedNic::kick(unsigned q) { parts_->device_->queue_notify(q); }

void ServedNic::call_changed(unsigned q, int fd) {
    Parts& p = *parts_;
    unsigned vector = CallFdVectors::moved_vector(q);
    p.vectors_.bind(vector, fd);
    RegisterDriver(*p.device_).set_ring_vector(q, vector);
    p.vectors_.bind(CallFdVectors::first_vector(q), -1);
}

void ServedNic::replace_memory(const std::function<void()>& replace) {
    parts_->device_->run_locked(replace);
    parts_->device_->remap_queues();
}

void ServedNic::print_stats(std::FILE* out, bool all) const {
    const Parts& p = *parts_;
    vmm::StatsSnapshot snapshot;
    vmm::StatsGroup group;
    group.name = "nic0-virtio-net";
    group.facts.emplace_back("name", p.config_.vm_name);
    group.facts.emplace_back("mac", p.mac_.to_string());
    for (auto& [name, value] : p.device_->counters()) group.counters.emplace_back(name, value);
    snapshot.groups.push_back(std::move(group));
    std::fputs(vmm::stats_text(snapshot, all).c_str(), out);
}

}  // namespace xover::devices
