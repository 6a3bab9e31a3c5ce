// The slow-path switch's forwarding rules (see switch_route.hpp).
#include "xover/crossover/switch_route.hpp"

namespace xover::crossover {

Route route_frame(const FrameFacts& frame, bool have_uplink) {
    if (frame.from_uplink) {
        if (frame.src_is_port) return Route::DropLooped;
        if (frame.multicast_dst) return Route::FloodPorts;
        return frame.dst_is_port ? Route::ToOwner : Route::DropUnknown;
    }
    if (!frame.multicast_dst && frame.dst_is_port) return Route::ToOwner;
    if (!have_uplink) return Route::FloodPorts;  // unknown unicast included, as without an uplink always
    return frame.multicast_dst ? Route::FloodPortsAndUplink : Route::ToUplink;
}

}  // namespace xover::crossover
