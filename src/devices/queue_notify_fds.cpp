#include "queue_notify_fds.hpp"

#include <spdlog/spdlog.h>

namespace xover::devices {

QueueNotifyFds::QueueNotifyFds(kvm::Vm* vm, const virtio_net::VirtioPciDevice& device, std::string what)
    : vm_(vm), device_(device), what_(std::move(what)) {
    for (unsigned q = 0; q < device.num_queues(); ++q) fds_.push_back(kvm::EventFd::create());
}

QueueNotifyFds::~QueueNotifyFds() {
    unregister();
    if (loop_)
        for (auto& fd : fds_) loop_->unwatch(fd.fd(), vmm::EventLoop::Interest::Readable);
}

void QueueNotifyFds::watch(vmm::EventLoop& loop, std::function<void(unsigned queue)> notify) {
    loop_ = &loop;
    for (unsigned q = 0; q < fds_.size(); ++q) {
        loop.watch(fds_[q].fd(), vmm::EventLoop::Interest::Readable, [this, q, notify] {
            fds_[q].drain();
            notify(q);
        });
    }
}

void QueueNotifyFds::follow_bar(bool enabled) {
    if (!vm_) return;
    const unsigned bar = device_.notify_bar();
    std::uint64_t base = enabled && device_.bar_decodes(bar) ? device_.bar_address(bar) : 0;
    if (base == registered_base_) return;
    unregister();
    if (base == 0) return;
    for (unsigned q = 0; q < fds_.size(); ++q) vm_->add_ioeventfd(fds_[q].fd(), base + device_.notify_offset(q), 0, false);
    registered_base_ = base;
}

void QueueNotifyFds::unregister() {
    if (registered_base_ == 0 || !vm_) return;
    for (unsigned q = 0; q < fds_.size(); ++q) {
        try {
            vm_->remove_ioeventfd(fds_[q].fd(), registered_base_ + device_.notify_offset(q), 0, false);
        } catch (const std::exception& e) {
            spdlog::warn("{}: removing a notify ioeventfd: {}", what_, e.what());
        }
    }
    registered_base_ = 0;
}

}  // namespace xover::devices
