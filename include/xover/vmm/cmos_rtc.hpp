// The MC146818 CMOS real-time clock at ports 0x70 (index) / 0x71 (data),
// reduced to what a booting kernel reads: the time of day and date (BCD,
// 24-hour, from the host's UTC clock at the moment of the read), status
// registers that say "no update in progress, time valid", and zeros for
// the rest of the CMOS RAM. Writes are ignored (no alarms, no periodic
// interrupt, no NVRAM).
//
// Why it exists: without it Linux polls the missing chip's update flag
// (all-ones reads) some 40,000 times at boot, each a userspace exit, then
// boots without a wall clock.
#pragma once

#include <atomic>
#include <cstdint>

#include "xover/vmm/io_device.hpp"

namespace xover::vmm {

class CmosRtc final : public IoDevice {
public:
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Register `index` as read now (exposed for unit tests).
    static std::uint8_t register_value(std::uint8_t index, long long unix_seconds);

private:
    std::atomic<std::uint8_t> index_{0};
};

}  // namespace xover::vmm
