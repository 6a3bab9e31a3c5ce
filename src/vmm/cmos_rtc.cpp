#include "xover/vmm/cmos_rtc.hpp"

#include <ctime>

namespace xover::vmm {

namespace {

std::uint8_t bcd(int v) { return std::uint8_t((v / 10) << 4 | (v % 10)); }

// Register numbers (MC146818 data sheet; the century byte is the PC
// convention also found in ACPI's FADT default).
enum : std::uint8_t {
    kSeconds = 0x00,
    kMinutes = 0x02,
    kHours = 0x04,
    kWeekday = 0x06,
    kDay = 0x07,
    kMonth = 0x08,
    kYear = 0x09,
    kStatusA = 0x0a,
    kStatusB = 0x0b,
    kStatusC = 0x0c,
    kStatusD = 0x0d,
    kCentury = 0x32,
};

}  // namespace

std::uint8_t CmosRtc::register_value(std::uint8_t index, long long unix_seconds) {
    std::time_t t = std::time_t(unix_seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    switch (index) {
    case kSeconds: return bcd(tm.tm_sec);
    case kMinutes: return bcd(tm.tm_min);
    case kHours: return bcd(tm.tm_hour);
    case kWeekday: return bcd(tm.tm_wday + 1);
    case kDay: return bcd(tm.tm_mday);
    case kMonth: return bcd(tm.tm_mon + 1);
    case kYear: return bcd(tm.tm_year % 100);
    case kCentury: return bcd(19 + tm.tm_year / 100);
    case kStatusA: return 0x26;  // 32.768 kHz time base, 1024 Hz rate, UIP (bit 7) clear
    case kStatusB: return 0x02;  // 24-hour mode, BCD, no interrupts enabled
    case kStatusD: return 0x80;  // valid RAM and time (battery good)
    default: return 0;           // status C (no interrupt flags) and CMOS RAM
    }
}

void CmosRtc::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    for (auto& b : data) b = 0xff;
    if (offset != 1 || data.empty()) return;  // the index port reads back nothing useful
    data[0] = register_value(index_.load(std::memory_order_relaxed), ::time(nullptr));
}

void CmosRtc::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    // Bit 7 of the index is the NMI mask on PCs; it does not select a register.
    if (offset == 0 && !data.empty()) index_.store(std::uint8_t(data[0] & 0x7f), std::memory_order_relaxed);
}

}  // namespace xover::vmm
