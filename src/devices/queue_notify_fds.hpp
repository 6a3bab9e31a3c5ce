// Private to src/devices: one eventfd per queue of a virtio device,
// registered with KVM as an ioeventfd on that queue's notify address
// wherever the guest maps the notify BAR, so a queue notify ends in the
// kernel (no exit to userspace). Who reads the eventfds is the owner's
// choice: the I/O thread (watch()), or a vhost-user back-end in another
// process.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "xover/kvm/event_fd.hpp"
#include "xover/kvm/vm.hpp"
#include "xover/virtio_net/virtio_pci_device.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::devices {

class QueueNotifyFds {
public:
    // `vm` null: not a KVM VM (nothing is ever registered). `what` names
    // the device in log lines.
    QueueNotifyFds(kvm::Vm* vm, const virtio_net::VirtioPciDevice& device, std::string what);
    ~QueueNotifyFds();
    QueueNotifyFds(const QueueNotifyFds&) = delete;
    QueueNotifyFds& operator=(const QueueNotifyFds&) = delete;

    unsigned size() const { return unsigned(fds_.size()); }
    kvm::EventFd& operator[](unsigned queue) { return fds_[queue]; }

    // Runs `notify(q)` on `loop`'s thread whenever queue q's eventfd is
    // signalled (drained first). Stopped by the destructor.
    void watch(vmm::EventLoop& loop, std::function<void(unsigned queue)> notify);

    // Call from the device's bars_mapped(): moves the registrations to
    // where the notify BAR now decodes, or removes them when it does not
    // (or when `enabled` is false: notifies then stay MMIO exits).
    void follow_bar(bool enabled = true);

private:
    void unregister();

    kvm::Vm* vm_;
    const virtio_net::VirtioPciDevice& device_;
    std::string what_;
    std::vector<kvm::EventFd> fds_;
    vmm::EventLoop* loop_ = nullptr;
    std::uint64_t registered_base_ = 0;
};

}  // namespace xover::devices
