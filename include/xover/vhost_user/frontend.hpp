// The front-end side of the vhost-user protocol: what a VMM says to an
// external back-end (DPDK's vhost PMD, OVS-DPDK, VPP, `xover vhost-user`)
// that serves its virtio-net queues. One connected Unix stream socket;
// every call is a blocking request, answered within a timeout (a back-end
// that stops answering is an error, never a hang).
//
// Negotiated at connect(): the back-end's features (it must offer
// VERSION_1 and PROTOCOL_FEATURES) and REPLY_ACK when it has it, so that
// every setting request is acknowledged before the next one goes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "xover/kvm/unique_fd.hpp"
#include "xover/vhost_user/messages.hpp"

namespace xover::vhost_user {

class Frontend {
public:
    // Generous: DPDK maps and may pin all of guest RAM in SET_MEM_TABLE, which
    // takes seconds on a loaded or emulated host; QEMU waits without limit.
    static constexpr std::chrono::milliseconds kReplyTimeout{10000};

    // Takes a connected socket and negotiates (GET_FEATURES, protocol
    // features, SET_OWNER). Throws xover::Error naming what failed.
    explicit Frontend(kvm::UniqueFd socket);

    // Connects to a back-end listening at `path` (client mode).
    static kvm::UniqueFd connect(const std::filesystem::path& path);

    int fd() const { return socket_.get(); }
    std::uint64_t features() const { return features_; }  // the back-end's, PROTOCOL_FEATURES included

    void set_features(std::uint64_t features);
    // The VM's memory: one region per entry, each with its fd.
    void set_mem_table(std::span<const MemoryRegion> regions, std::span<const int> fds);
    void set_vring_num(std::uint32_t ring, std::uint32_t num);
    void set_vring_base(std::uint32_t ring, std::uint16_t base);
    void set_vring_addr(const VringAddress& address);
    void set_vring_kick(std::uint32_t ring, int fd);
    void set_vring_call(std::uint32_t ring, int fd);
    void set_vring_enable(std::uint32_t ring, bool enable);
    // Stops the ring; the index the back-end would take next.
    std::uint16_t get_vring_base(std::uint32_t ring);

private:
    // A request whose only answer is the ack (when REPLY_ACK is on).
    void send(Request request, std::span<const std::uint8_t> payload, std::span<const int> fds = {});
    // A request with a reply payload.
    std::vector<std::uint8_t> call(Request request, std::span<const std::uint8_t> payload = {});
    std::vector<std::uint8_t> reply(Request request);

    kvm::UniqueFd socket_;
    std::uint64_t features_ = 0;
    bool reply_ack_ = false;
};

}  // namespace xover::vhost_user
