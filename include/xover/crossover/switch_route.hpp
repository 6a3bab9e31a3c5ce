// Where the broker's slow-path switch sends one frame, decided from its
// addresses alone (so the rules are unit-tested without sockets).
//
// The switch learns nothing: its table is the configured MACs of the
// ports (the broker-backend NICs). The optional uplink (a tap device, like
// a physical switch's uplink or a bridge's host port) gets what no port
// owns: unknown unicast, and a copy of every broadcast and multicast.
// From the uplink only frames for a port (or broadcast/multicast) enter;
// a frame carrying a port's own source MAC has looped back from the host
// side and is dropped, so a bridged loop cannot turn into a storm.
// Without an uplink the switch behaves as it always did: unknown unicast
// is flooded to every other port.
#pragma once

#include <cstdint>

namespace xover::crossover {

enum class Route : std::uint8_t {
    ToOwner,              // the one port whose NIC has the destination MAC
    FloodPorts,           // every port but the sender
    FloodPortsAndUplink,  // every port but the sender, and the uplink
    ToUplink,             // the uplink only
    DropUnknown,          // from the uplink: unicast that no port owns
    DropLooped,           // from the uplink: a port's own source MAC
};

struct FrameFacts {
    bool from_uplink = false;
    bool multicast_dst = false;  // broadcast counts as multicast
    bool dst_is_port = false;    // a port other than the sender owns the destination
    bool src_is_port = false;    // a port owns the source (only asked for uplink frames)
};

Route route_frame(const FrameFacts& frame, bool have_uplink);

}  // namespace xover::crossover
