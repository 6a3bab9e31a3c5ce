// Opening a Linux tap interface (IFF_TAP | IFF_NO_PI: one read() or write()
// is exactly one Ethernet frame), shared by the tap backend of a VM's NIC
// and the broker's switch uplink.
#pragma once

#include <string>

#include "xover/kvm/unique_fd.hpp"

namespace xover::net {

enum class TapMissing {
    Create,  // TUNSETIFF makes a new (non-persistent) tap: the NIC backend
    Refuse,  // the interface must exist already: the switch uplink
};

// A non-blocking, close-on-exec fd attached to tap `ifname`. Throws
// xover::Error with one line that names "tap:IFNAME" and says what to do:
// no such interface, not a tap, already attached elsewhere, or no
// permission (CAP_NET_ADMIN, or a tap made with `ip tuntap add ... user`).
kvm::UniqueFd open_tap(const std::string& ifname, TapMissing missing);

// Sets IFF_UP on the interface. Not fatal (logs a warning): a persistent
// tap prepared by an administrator may be attachable without the right to
// change its flags.
void bring_tap_up(const std::string& ifname);

enum class TapLink { Up, Down, Gone };
// The interface's administrative state now (Gone: no such interface), as
// seen from the network namespace `query_socket` (a datagram socket) was
// made in: a jailed process moved to a namespace of its own keeps one from
// before (vmm/jail.hpp). Without one, a socket made now asks.
TapLink tap_link(const std::string& ifname, int query_socket = -1);
const char* to_string(TapLink link);

}  // namespace xover::net
