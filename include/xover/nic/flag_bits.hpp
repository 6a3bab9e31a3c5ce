// Flag sets of the shared NIC ABI (link flags, RX ring features, TX queue
// flags, handoff record flags): every flag is one bit and no two flags of
// one set share it. A peer built from another source reads our words with
// its own constants, so an overlap silently means two things at once (as
// kRxEventIdx and kRxStripCrc once both were bit 0). Each set is listed
// next to its flags and checked here at compile time, and by the unit
// test [shared-state]; a new flag goes into its set's list.
#pragma once

#include <cstdint>
#include <span>

namespace xover::nic {

// True when each flag is a single bit and the flags are pairwise disjoint.
constexpr bool distinct_bits(std::span<const std::uint32_t> flags) {
    std::uint32_t seen = 0;
    for (std::uint32_t f : flags) {
        if (f == 0 || (f & (f - 1)) != 0 || (seen & f) != 0) return false;
        seen |= f;
    }
    return true;
}

}  // namespace xover::nic
