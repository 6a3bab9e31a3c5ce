// The VM's NICs' carrier switches (net::CarrierGate), by NIC index, for the
// control API (PUT /nics/{id}/carrier). Each NIC adds its own when built
// and removes it when it goes; any thread may set one meanwhile.
#pragma once

#include <map>
#include <mutex>
#include <optional>

#include "xover/net/carrier_gate.hpp"

namespace xover::devices {

class NicCarriers {
public:
    void add(unsigned index, net::CarrierGate& gate) {
        std::lock_guard lock(mutex_);
        gates_[index] = &gate;
    }
    void remove(unsigned index) {
        std::lock_guard lock(mutex_);
        gates_.erase(index);
    }
    // False when there is no NIC `index`.
    bool set(unsigned index, bool up) {
        std::lock_guard lock(mutex_);
        auto it = gates_.find(index);
        if (it == gates_.end()) return false;
        it->second->set_carrier(up);
        return true;
    }
    std::optional<bool> get(unsigned index) const {
        std::lock_guard lock(mutex_);
        auto it = gates_.find(index);
        if (it == gates_.end()) return std::nullopt;
        return it->second->carrier();
    }

private:
    mutable std::mutex mutex_;
    std::map<unsigned, net::CarrierGate*> gates_;
};

}  // namespace xover::devices
