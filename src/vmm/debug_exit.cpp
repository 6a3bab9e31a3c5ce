#include "xover/vmm/debug_exit.hpp"

#include <algorithm>

namespace xover::vmm {

void DebugExit::read(std::uint64_t, std::span<std::uint8_t> data) { std::fill(data.begin(), data.end(), 0); }

void DebugExit::write(std::uint64_t, std::span<const std::uint8_t> data) {
    // Only the low byte counts, whatever the access width.
    if (!data.empty() && stop_) stop_(data[0]);
}

void ResetPort::read(std::uint64_t, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);  // status: buffers empty
}

void ResetPort::write(std::uint64_t, std::span<const std::uint8_t> data) {
    constexpr std::uint8_t kPulseReset = 0xfe;
    if (!data.empty() && data[0] == kPulseReset && stop_) stop_(0);
}

}  // namespace xover::vmm
