// Ethernet framing facts every NIC model and backend shares.
#pragma once

#include <cstddef>

namespace xover::net {

// Destination MAC, source MAC, EtherType: a frame shorter than this is not one.
inline constexpr std::size_t kEthernetHeader = 14;

}  // namespace xover::net
