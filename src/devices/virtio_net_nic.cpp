// A virtio-net NIC as the machine gets it: the model, its backend, its
// MSI-X controller, the ioeventfds behind its queue notifies and, with a
// crossover, its DMA window (window mode) and crossover attachment.
#include <array>

#include <spdlog/spdlog.h>

#include "nic_backend.hpp"
#include "nic_crossover.hpp"
#include "msi_owner.hpp"
#include "nic_setup.hpp"
#include "posted_register.hpp"
#include "queue_notify_fds.hpp"
#include "xover/kvm/event_fd.hpp"
#include "xover/virtio_net/virtio_net.hpp"

namespace xover::devices {

namespace {

class VirtioNetNic final : private BackendOwner, private MsiOwner, public virtio_net::VirtioNet {
public:
    VirtioNetNic(const NicSetup& setup, vmm::NicContext& context)
        : BackendOwner(setup, context),
          MsiOwner(context, kMsixVectors),
          VirtioNet(context.memory, msi, context.intx, *backend, setup.mac),
          notifiers_(context.vm, *this, "virtio-net"),
          use_ioeventfd_(vmm::uses_ioeventfd(setup.config)) {
        notifiers_.watch(context.loop, [this](unsigned q) { queue_notify(q); });
        if (!setup.config.crossover.empty()) {
            // Peers write the RX and TX vectors' irqfds directly while the
            // guest leaves them unmasked (see VirtioNet::kCrossoverRxVector).
            crossover_ = std::make_unique<NicCrossover<virtio_net::VirtioNet>>(
                *this, setup, context, *backend, msi.eventfd(kCrossoverRxVector), msi.eventfd(kCrossoverTxVector),
                kWindowBar,
                [this](unsigned index, const vmm::PciBar& bar) { define_bar(index, bar); });
        }
        if (context.posted_writes) {
            rx_notify_ = std::make_unique<PostedRegister>(*context.posted_writes, *this, notify_bar(),
                                                          notify_offset(kRxQueue), [this] { notify_posting_stale(); });
            set_notify_posting(kRxQueue, [this](bool post) { rx_notify_->set_posted(post); });
        }
        start_backend(*backend, context.loop, *this, crossover_.get());
    }
    ~VirtioNetNic() override {
        set_notify_posting(kRxQueue, {});
        rx_notify_.reset();
        crossover_.reset();
        stop_backend();
    }

    // A queue notify is a guest MMIO write that KVM turns into an eventfd
    // signal (no exit to userspace); follow the BAR wherever it is mapped.
    void bars_mapped() override {
        if (crossover_) crossover_->bars_mapped(*this);
        if (rx_notify_) rx_notify_->bars_mapped();
        // ioeventfd=off: notifies stay MMIO exits, served by the vCPU thread.
        notifiers_.follow_bar(use_ioeventfd_);
    }

private:
    static constexpr unsigned kMsixVectors = 3;
    // BAR2: the crossover DMA window (32-bit memory, 2 MiB), BAR3 its ring
    // area (64 KiB), next to the
    // transport's 64-bit BAR4; virtio drivers look only where the
    // capabilities point.
    static constexpr unsigned kWindowBar = 2;
    static_assert(kWindowBar + 2 <= VirtioNet::kBar);  // the window, then its ring area

    QueueNotifyFds notifiers_;
    bool use_ioeventfd_;
    std::unique_ptr<NicCrossover<virtio_net::VirtioNet>> crossover_;
    // With posted writes: the RX notify, once the driver flushes it (only
    // notifies that exit are seen, so never with the ioeventfd).
    std::unique_ptr<PostedRegister> rx_notify_;
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_virtio_net_nic(const NicSetup& setup, vmm::NicContext& context) {
    return std::make_unique<VirtioNetNic>(setup, context);
}

}  // namespace xover::devices
