// The counters of a virtio-net NIC whose queues an external vhost-user
// back-end serves (--nic virtio-net,backend=vhost-user:PATH), printed
// before its transport's (net/counter_set.hpp).
#pragma once

#include <cstdint>

#include "xover/net/counter_set.hpp"

namespace xover::devices {

#define XOVER_VHOST_USER_NET_COUNTERS(X, V)                                                                  \
    X(connects, "connections to the back-end (the first one and each reconnect)")                           \
    X(disconnects, "times the back-end went away or broke the protocol (the link read down until it was back)") \
    X(starts, "times the rings were handed to the back-end (DRIVER_OK, or a reconnect)")                     \
    X(calls, "back-end calls the I/O thread delivered (the vector masked, or INTx); unmasked vectors take them in the kernel") \
    X(call_routes, "call fds sent to the back-end (at each start, and when masking or a queue's vector changed)")

struct VhostUserNetCounters {
    XOVER_COUNTER_SET(XOVER_VHOST_USER_NET_COUNTERS, "vhost_user_", std::uint64_t)
};

}  // namespace xover::devices
