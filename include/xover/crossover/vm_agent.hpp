// The crossover agent of one VM: one broker connection shared by all of
// the VM's crossover NICs. NICs add their registration as they are built;
// whoever built them (the device manager) then calls register_vm() once (so
// a refusal, such as a duplicate VM name, fails VM setup before any vCPU
// runs). Links arrive on the VM's I/O thread and are handed to the NIC
// they name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "xover/crossover/client.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::crossover {

// What the agent needs from a crossover NIC (implemented by the device
// manager's crossover attachments). Called on the I/O thread.
class LinkedNic {
public:
    virtual ~LinkedNic() = default;
    virtual void crossover_link_up(std::shared_ptr<PeerLink> link) = 0;
    virtual void crossover_link_down(std::uint64_t link_id) = 0;
};

class VmAgent final : public LinkHandler {
public:
    // Queues NIC `reg.index` for registration; `nic` gets its links.
    void add_nic(NicRegistration reg, LinkedNic& nic);
    // The NIC is going away: no more links for it. The last one closes the
    // broker connection (the broker then tears down its links at once).
    void remove_nic(std::uint32_t index);
    // Connects (starting a broker if needed), registers every queued NIC
    // and watches the connection on `loop`. Throws xover::Error.
    void register_vm(const std::string& vm_name, const std::string& consent_group, const std::filesystem::path& broker,
                     vmm::EventLoop& loop);
    // Auto wiring: safe from any thread, never blocks.
    void report_frame_seen(std::uint32_t nic, const net::MacAddress& dst);

    // LinkHandler (I/O thread)
    void link_up(std::shared_ptr<PeerLink> link) override;
    void link_down(std::uint64_t link_id, std::uint32_t local_nic) override;
    void broker_lost() override;

private:
    void disconnect_locked();

    std::mutex mutex_;
    std::optional<BrokerClient> client_;
    vmm::EventLoop* loop_ = nullptr;
    std::map<std::uint32_t, LinkedNic*> nics_;
    std::vector<NicRegistration> pending_;
};

}  // namespace xover::crossover
