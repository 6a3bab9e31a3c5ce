#include <catch2/catch.hpp>

#include <array>

#include "xover/vmm/cmos_rtc.hpp"

using xover::vmm::CmosRtc;

TEST_CASE("CMOS RTC reports a BCD UTC time and a settled clock", "[vmm][rtc]") {
    // 2024-02-29 13:45:07 UTC, a Thursday.
    const long long t = 1709214307;
    CHECK(CmosRtc::register_value(0x00, t) == 0x07);
    CHECK(CmosRtc::register_value(0x02, t) == 0x45);
    CHECK(CmosRtc::register_value(0x04, t) == 0x13);
    CHECK(CmosRtc::register_value(0x06, t) == 0x05);  // 1 = Sunday
    CHECK(CmosRtc::register_value(0x07, t) == 0x29);
    CHECK(CmosRtc::register_value(0x08, t) == 0x02);
    CHECK(CmosRtc::register_value(0x09, t) == 0x24);
    CHECK(CmosRtc::register_value(0x32, t) == 0x20);
    CHECK((CmosRtc::register_value(0x0a, t) & 0x80) == 0);  // no update in progress
    CHECK(CmosRtc::register_value(0x0b, t) == 0x02);        // 24 h, BCD
    CHECK(CmosRtc::register_value(0x0d, t) == 0x80);        // time valid
}

TEST_CASE("CMOS RTC selects registers through port 0x70, NMI bit ignored", "[vmm][rtc]") {
    CmosRtc rtc;
    std::array<std::uint8_t, 1> index{0x80 | 0x0b}, value{};
    rtc.write(0, index);
    rtc.read(1, value);
    CHECK(value[0] == 0x02);
    index[0] = 0x0d;
    rtc.write(0, index);
    rtc.read(1, value);
    CHECK(value[0] == 0x80);
}
