// DeviceManager's control-API operations: runtime links and carriers.
#include <algorithm>

#include "xover/devices/device_manager.hpp"
#include "xover/error.hpp"

namespace xover::devices {

namespace {

void apply_change(std::vector<std::string>& peers, const std::string& peer, DeviceManager::PeerChange change) {
    auto it = std::find(peers.begin(), peers.end(), peer);
    if (change == DeviceManager::PeerChange::Link && it == peers.end()) peers.push_back(peer);
    if (change == DeviceManager::PeerChange::Unlink && it != peers.end()) peers.erase(it);
}

}  // namespace

bool DeviceManager::change_peer(const std::string& peer, PeerChange change, std::optional<unsigned> nic) {
    if (peer == vm_name_) throw Error("a VM cannot link to itself");
    std::lock_guard lock(control_mutex_);
    std::vector<std::uint32_t> targets = agent_.nic_indices();
    if (nic) {
        if (std::find(targets.begin(), targets.end(), *nic) == targets.end()) return false;
        targets = {*nic};
    }
    if (targets.empty()) return false;
    for (std::uint32_t index : targets) {
        if (auto saved = unplugged_.find(index); saved != unplugged_.end()) {
            apply_change(saved->second.peers, peer, change);  // given back at carrier up
            continue;
        }
        std::vector<std::string> peers = agent_.peers(index);
        apply_change(peers, peer, change);
        agent_.set_peers(index, std::move(peers));
    }
    return true;
}

std::vector<std::string> DeviceManager::named_peers(unsigned nic) const {
    std::lock_guard lock(control_mutex_);
    if (auto saved = unplugged_.find(nic); saved != unplugged_.end()) return saved->second.peers;
    return agent_.peers(nic);
}

bool DeviceManager::set_carrier(unsigned nic, bool up) {
    std::lock_guard lock(control_mutex_);
    if (!carriers_.get(nic)) return false;
    const auto crossover_nics = agent_.nic_indices();
    const bool crossover = std::find(crossover_nics.begin(), crossover_nics.end(), nic) != crossover_nics.end();
    if (crossover && !up && !unplugged_.count(nic)) {
        unplugged_[nic] = Unplugged{agent_.peers(nic), agent_.auto_peer(nic)};
        agent_.set_peers(nic, {}, false);
    }
    carriers_.set(nic, up);
    if (crossover && up) {
        if (auto saved = unplugged_.find(nic); saved != unplugged_.end()) {
            agent_.set_peers(nic, std::move(saved->second.peers), saved->second.auto_peer);
            unplugged_.erase(saved);
        }
    }
    return true;
}

}  // namespace xover::devices
