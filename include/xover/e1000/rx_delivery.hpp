// What the 82540EM hands its driver for one received frame, as one pure
// step shared by the two writers of an e1000 RX ring: the device model
// (frames from its backend) and a crossover producer in another process
// (frames from a peer, with the owner's registers read from its shared
// page). Given CTRL (VME), VET, RCTL (SECRC) and RXCSUM (IPOFL/TUOFL):
//   - the bytes the buffers get: the frame, less a VLAN tag stripped into
//     the descriptor's special field (CTRL.VME), plus the FCS unless SECRC;
//   - the last descriptor's status (VP, IPCS/TCPCS or IXSM) and errors
//     (IPE/TCPE) from checking the IPv4 and TCP/UDP checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "xover/vmm/guest_memory.hpp"

namespace xover::e1000::rx_delivery {

inline constexpr std::size_t kMaxFrame = 16384;     // RCTL.LPE
inline constexpr std::uint32_t kMinBufferSize = 256;
// Enough descriptors for the longest frame (and FCS) in the smallest buffers.
inline constexpr std::size_t kMaxDescriptors = (kMaxFrame + 4 + kMinBufferSize - 1) / kMinBufferSize;

// The RX descriptors a frame takes, from RDH on, and their buffers.
struct Targets {
    std::array<std::span<std::uint8_t>, kMaxDescriptors> descriptors, buffers;
    std::uint32_t count = 0;
};

// Resolves descriptors [head, head + needed) of the legacy ring at
// `ring_gpa` (`entries` long) and buffers for `total` bytes in pieces of
// `buffer_size`, all before anything is written: a bad address drops the
// frame without touching the ring. Returns how many resolved (`needed`
// when all did); the next one, or its buffer, is outside `memory`.
std::uint32_t resolve(vmm::GuestMemory& memory, std::uint64_t ring_gpa, std::uint32_t entries, std::uint32_t head,
                      std::uint32_t needed, std::size_t total, std::uint32_t buffer_size, Targets& out);

struct Registers {
    std::uint32_t ctrl = 0, vet = 0, rctl = 0, rxcsum = 0;
};

// Constructing one is cheap (where the tag goes, how many bytes): the
// checksums and the FCS are computed once, by the first scatter() or
// write_back(), so a frame that finds the ring full costs no pass over it.
class Delivery {
public:
    Delivery(std::span<const std::uint8_t> frame, const Registers& regs);
    Delivery(const Delivery&) = delete;  // scatter()'s pieces point into itself
    Delivery& operator=(const Delivery&) = delete;

    // Bytes the buffers receive, in order.
    std::size_t size() const { return head_.size() + body_.size() + (fcs_ ? 4 : 0); }
    bool vlan_stripped() const { return stripped_; }
    // Copies size() bytes, `buffers` in turn (their sizes must add up).
    void scatter(std::span<const std::span<std::uint8_t>> buffers);
    // scatter() into `targets`, then every descriptor's write-back.
    void write(const Targets& targets);
    // Writes one legacy descriptor's write-back: length, the status and
    // errors (on the last descriptor of the frame) and, DD last with
    // release ordering, for a polling driver.
    void write_back(std::span<std::uint8_t> descriptor, std::uint16_t length, bool last);

private:
    // Checksums and FCS, from the frame as it came: before scatter() moves
    // bytes (in window mode the source can be the destination).
    void settle();

    std::span<const std::uint8_t> head_, body_;
    std::array<std::uint8_t, 4> crc_{};
    std::uint32_t rxcsum_ = 0;
    bool fcs_ = false, stripped_ = false, settled_ = false;
    std::uint8_t status_ = 0, errors_ = 0;
    std::uint16_t special_ = 0;
};

// Receive checksum offload for IPv4 TCP/UDP (`l3`: the IP header on):
// status says what was checked, errors what failed; with both offloads off
// status gets IXSM ("ignore checksum indication").
void check_checksums(std::uint32_t rxcsum, std::uint16_t ether_type, std::span<const std::uint8_t> l3,
                     std::uint8_t& status, std::uint8_t& errors);

}  // namespace xover::e1000::rx_delivery
