// A virtio-snd sound card as the machine gets it: the device model, its
// sound backend (a file, nothing, or a crossover cable), its MSI-X
// controller, the ioeventfds behind its queue notifies, and its stream
// clocks.
#include "msi_owner.hpp"
#include "queue_notify_fds.hpp"
#include "sound_crossover.hpp"
#include "sound_setup.hpp"
#include "stream_clocks.hpp"
#include "xover/sound/backend.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"

namespace xover::devices {

namespace {

// Base-from-member: the backend exists before the device that plays into it.
struct SoundBackendOwner {
    explicit SoundBackendOwner(std::unique_ptr<sound::Backend> b) : backend(std::move(b)) {}
    std::unique_ptr<sound::Backend> backend;
};

class VirtioSndDevice final : private SoundBackendOwner, private MsiOwner, public virtio_snd::VirtioSnd {
public:
    VirtioSndDevice(SoundSetup& setup, vmm::NicContext& context)
        : SoundBackendOwner(std::move(setup.backend)),
          MsiOwner(context, kMsixVectors),
          VirtioSnd(context.memory, msi, context.intx, *backend, setup.config.format),
          notifiers_(context.vm, *this, setup.name),
          clocks_(context.loop, *this, setup.name) {
        notifiers_.watch(context.loop, [this](unsigned q) { queue_notify(q); });
        if (setup.crossover) setup.crossover->attach(*this, *setup.agent, context.index);
    }

    void bars_mapped() override { notifiers_.follow_bar(); }

    std::vector<std::pair<std::string, std::uint64_t>> counters() const override {
        net::Counters out = VirtioSnd::counters();
        clocks_.append_counters(out);
        return out;
    }

private:
    QueueNotifyFds notifiers_;
    StreamClocks clocks_;
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_virtio_snd(SoundSetup setup, vmm::NicContext& context) {
    return std::make_unique<VirtioSndDevice>(setup, context);
}

}  // namespace xover::devices
