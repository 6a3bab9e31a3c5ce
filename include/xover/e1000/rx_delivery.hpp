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

namespace xover::e1000::rx_delivery {

struct Registers {
    std::uint32_t ctrl = 0, vet = 0, rctl = 0, rxcsum = 0;
};

class Delivery {
public:
    Delivery(std::span<const std::uint8_t> frame, const Registers& regs);
    Delivery(const Delivery&) = delete;  // pieces() points into itself
    Delivery& operator=(const Delivery&) = delete;

    // Bytes the buffers receive, in order.
    std::size_t size() const { return head_.size() + body_.size() + (fcs_ ? 4 : 0); }
    // Copies size() bytes, `buffers` in turn (their sizes must add up).
    void scatter(std::span<const std::span<std::uint8_t>> buffers) const;
    // Writes one legacy descriptor's write-back: length, the status and
    // errors (on the last descriptor of the frame) and, DD last with
    // release ordering, for a polling driver.
    void write_back(std::span<std::uint8_t> descriptor, std::uint16_t length, bool last) const;

    bool vlan_stripped() const;
    std::uint8_t status() const { return status_; }
    std::uint8_t errors() const { return errors_; }

private:
    std::span<const std::uint8_t> head_, body_;
    std::array<std::uint8_t, 4> crc_{};
    bool fcs_ = false;
    std::uint8_t status_ = 0, errors_ = 0;
    std::uint16_t special_ = 0;
};

// Receive checksum offload for IPv4 TCP/UDP (`l3`: the IP header on):
// status says what was checked, errors what failed; with both offloads off
// status gets IXSM ("ignore checksum indication").
void check_checksums(std::uint32_t rxcsum, std::uint16_t ether_type, std::span<const std::uint8_t> l3,
                     std::uint8_t& status, std::uint8_t& errors);

}  // namespace xover::e1000::rx_delivery
