// The broker's slow-path switch, both ends.
//
// A NIC with `backend = "broker"` has the broker itself as its physical
// path: each frame goes to the broker over the NIC's own SOCK_SEQPACKET
// connection to `<broker socket>.switch` (one packet = one frame, the
// first packet a SwitchHello naming the VM, the NIC and its MAC). The
// broker forwards a unicast frame to the port with that MAC, and floods
// broadcast, multicast and unknown unicast to every other port — a small
// learning-free switch whose table is the NICs' configured MACs. Unicast
// between two registered crossover NICs is also the cross-talk detector's
// input: an auto NIC gets a link, and its later frames skip the broker.
// An optional uplink (a tap; switch_uplink.hpp, rules in switch_route.hpp)
// connects the switch to the host.
//
// Lossless: the VM's send() answers Busy when its socket is full; the
// broker stops reading every port while some port's output queue is long,
// so a slow receiver backs up into its senders instead of losing frames.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <poll.h>

#include "xover/crossover/switch_uplink.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/net/backend.hpp"
#include "xover/net/mac_address.hpp"

namespace xover::crossover {

// Where the switch listens, next to the broker's control socket.
std::filesystem::path switch_socket_path(const std::filesystem::path& broker_socket);

// The first packet on a switch connection.
struct SwitchHello {
    static constexpr std::uint32_t kMagic = 0x31575358;  // "XSW1"
    std::string vm;
    std::uint32_t nic = 0;
    net::MacAddress mac;
    std::vector<std::uint8_t> encode() const;
    static std::optional<SwitchHello> decode(std::span<const std::uint8_t> packet);
};

// VM side. Connects (starting a broker if none listens, like a crossover
// NIC's registration) when made. Throws xover::Error.
std::unique_ptr<net::Backend> make_broker_backend(const std::filesystem::path& broker_socket, const std::string& vm,
                                                  std::uint32_t nic, const net::MacAddress& mac);

// Broker side: the switch, driven by the broker's poll loop.
class SlowPathSwitch {
public:
    // A unicast frame between two ports: input for the cross-talk detector.
    struct Seen {
        net::MacAddress src, dst;
    };

    // Binds and listens on `path` (replacing a stale socket). Throws
    // xover::Error. `uplink` (may be null) becomes the switch's uplink port.
    explicit SlowPathSwitch(const std::filesystem::path& path, std::unique_ptr<SwitchUplink> uplink = nullptr);
    ~SlowPathSwitch();
    SlowPathSwitch(const SlowPathSwitch&) = delete;
    SlowPathSwitch& operator=(const SlowPathSwitch&) = delete;

    // Appends this switch's pollfds; handle() gets the same entries back
    // (after poll) and appends what the detector should look at.
    void add_pollfds(std::vector<pollfd>& fds);
    void handle(std::span<const pollfd> fds, std::vector<Seen>& seen);

    std::size_t port_count() const { return ports_.size(); }
    struct Totals {
        std::uint64_t frames = 0, flooded = 0, dropped = 0, stalls = 0;
    };
    const Totals& totals() const { return totals_; }
    const SwitchUplink* uplink() const { return uplink_.get(); }

private:
    struct Port;
    using PortId = std::uint64_t;

    void accept_ports();
    bool read_port(PortId id, std::vector<Seen>& seen);
    void forward(PortId from, std::span<const std::uint8_t> frame, std::vector<Seen>& seen);
    void read_uplink();
    void forward_from_uplink(std::span<const std::uint8_t> frame);
    // The greeted port (other than `except`) whose NIC has `mac`, or null.
    Port* owner_of(const net::MacAddress& mac, PortId except);
    // Every greeted port but `except`; true if none of them dropped it.
    bool flood(PortId except, std::span<const std::uint8_t> frame);
    // False when the frame was dropped (the port's queue is at its hard limit).
    bool to_port(Port& port, std::span<const std::uint8_t> frame);
    bool flush(Port& port);
    void drop(PortId id);
    bool backed_up() const;

    std::filesystem::path path_;
    kvm::UniqueFd listener_;
    std::map<PortId, std::unique_ptr<Port>> ports_;
    std::vector<PortId> polled_;  // port ids in add_pollfds order
    std::unique_ptr<SwitchUplink> uplink_;
    bool uplink_polled_ = false;  // its pollfd follows the ports'
    PortId next_id_ = 1;
    Totals totals_;
    std::vector<std::uint8_t> buffer_;
};

}  // namespace xover::crossover
