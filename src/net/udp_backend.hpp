#pragma once
#include <memory>
#include "xover/net/backend.hpp"
#include "xover/net/backend_spec.hpp"
namespace xover::net {
// One Ethernet frame per UDP datagram (QEMU's -netdev dgram / socket,udp=). Lossy.
std::unique_ptr<Backend> make_udp_backend(const UdpSpec& spec);
}  // namespace xover::net
