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
        : AttachedBackend(lasting),
          // Every vector CallFdVectors may bind, the moved ones included:
          // a ring moved to a vector the table lacks would read NO_VECTOR
          // and never interrupt again.
          VirtioNet(context.memory, vectors, context.intx, *backend, setup.mac, vectors.count()) {
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
    CallFdVectors vectors_{ServedNic::kRings};
    vmm::NicContext context_;
    NicSetup setup_;
    std::unique_ptr<ServedVirtioNet> device_;  // last: goes first
};

ServedNic::ServedNic(const VhostUserConfig& config, vmm::EventLoop& loop, vmm::GuestMemory& memory,
                     LastingBackend& backend, std::uint64_t features, std::span<const ServedRing> rings)
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
    RegisterDriver(*p.device_).start(features, rings, p.vectors_.count());
}

ServedNic::~ServedNic() = default;

void ServedNic::kick(unsigned q) { parts_->device_->queue_notify(q); }

void ServedNic::call_changed(unsigned q, int fd) {
    Parts& p = *parts_;
    unsigned vector = p.vectors_.moved_vector(q);
    p.vectors_.bind(vector, fd);
    RegisterDriver(*p.device_).set_ring_vector(q, vector);
    p.vectors_.bind(CallFdVectors::first_vector(q), -1);
}

virtio_net::VirtioPciDevice& ServedNic::model() { return *parts_->device_; }

vmm::StatsGroup ServedNic::stats() const {
    const Parts& p = *parts_;
    vmm::StatsGroup group;
    group.name = "nic0-virtio-net";
    group.facts.emplace_back("name", p.config_.vm_name);
    group.facts.emplace_back("mac", p.mac_.to_string());
    for (auto& [name, value] : p.device_->counters()) group.counters.emplace_back(name, value);
    return group;
}

}  // namespace xover::devices
