#include "xover/crossover/vm_agent.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

namespace xover::crossover {

void VmAgent::add_nic(NicRegistration reg, LinkedNic& nic) {
    std::lock_guard lock(mutex_);
    nics_[reg.index] = &nic;
    pending_.push_back(std::move(reg));
}

void VmAgent::remove_nic(std::uint32_t index) {
    std::lock_guard lock(mutex_);
    nics_.erase(index);
    std::erase_if(pending_, [index](const NicRegistration& r) { return r.index == index; });
    if (nics_.empty()) disconnect_locked();
}

void VmAgent::disconnect_locked() {
    if (client_ && loop_) loop_->unwatch(client_->fd(), vmm::EventLoop::Interest::Readable);
    client_.reset();
    loop_ = nullptr;
}

void VmAgent::register_vm(const std::string& vm_name, const std::string& consent_group,
                          const std::filesystem::path& broker, vmm::EventLoop& loop) {
    std::lock_guard lock(mutex_);
    if (client_) throw Error("VM '{}': already registered with the crossover broker", vm_name);
    Register reg;
    reg.vm_name = vm_name;
    reg.consent_group = consent_group;
    reg.nics = std::move(pending_);
    pending_.clear();
    BrokerClient client = BrokerClient::connect(broker);
    client.register_vm(std::move(reg));
    client_.emplace(std::move(client));
    loop_ = &loop;
    int fd = client_->fd();
    spdlog::info("crossover: VM '{}' registered with the broker at {}", vm_name, broker.string());
    loop.watch(fd, vmm::EventLoop::Interest::Readable, [this] {
        // The I/O thread is the only reader; the lock only guards against
        // a NIC going away meanwhile (NIC callbacks take their own locks).
        std::unique_lock lock(mutex_);
        if (!client_) return;
        BrokerClient* client = &*client_;
        lock.unlock();
        if (!client->on_readable(*this)) {
            std::lock_guard again(mutex_);
            disconnect_locked();
        }
    });
}

void VmAgent::report_frame_seen(std::uint32_t nic, const net::MacAddress& dst) {
    // client_ is set before the guest runs and only reset at teardown.
    if (client_) client_->report_frame_seen(nic, dst);
}

void VmAgent::link_up(std::shared_ptr<PeerLink> link) {
    LinkedNic* nic = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = nics_.find(link->local_nic);
        if (it != nics_.end()) nic = it->second;
    }
    if (!nic) {
        spdlog::warn("crossover: link {} names NIC {}, which has no crossover here; ignored", link->id, link->local_nic);
        return;
    }
    nic->crossover_link_up(std::move(link));
}

void VmAgent::link_down(std::uint64_t link_id, std::uint32_t local_nic) {
    LinkedNic* nic = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = nics_.find(local_nic);
        if (it != nics_.end()) nic = it->second;
    }
    if (nic) nic->crossover_link_down(link_id);
}

void VmAgent::broker_lost() {}

}  // namespace xover::crossover
