// The I/O bus: ordered, non-overlapping ranges; dispatch by address with
// offsets relative to the range; unclaimed accesses read as all-ones.
#include <catch2/catch.hpp>

#include <vector>

#include "xover/error.hpp"
#include "xover/vmm/io_bus.hpp"

namespace {

struct Recorder : xover::vmm::IoDevice {
    std::vector<std::uint64_t> reads, writes;
    std::uint8_t fill = 0x5a;
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        reads.push_back(offset);
        for (auto& b : data) b = fill;
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t>) override { writes.push_back(offset); }
};

}  // namespace

TEST_CASE("io bus refuses overlapping, empty and wrapping ranges", "[bus]") {
    xover::vmm::IoBus bus("pio");
    Recorder a, b;
    bus.insert(0x100, 0x10, a, "a");
    CHECK_THROWS_AS(bus.insert(0x10f, 1, b, "b"), xover::Error);   // last byte of a
    CHECK_THROWS_AS(bus.insert(0xf0, 0x11, b, "b"), xover::Error);  // first byte of a
    CHECK_THROWS_AS(bus.insert(0x0f8, 0x100, b, "b"), xover::Error);  // covers a
    CHECK_THROWS_AS(bus.insert(0x200, 0, b, "b"), xover::Error);
    CHECK_FALSE(bus.try_insert(~0ull - 1, 4, b, "b"));
    CHECK(bus.try_insert(0x110, 0x10, b, "b"));  // adjacent is fine
    CHECK(bus.try_insert(0xf0, 0x10, b, "b"));
}

TEST_CASE("io bus dispatches with offsets and counts per device", "[bus]") {
    xover::vmm::IoBus bus("mmio");
    Recorder a, b;
    bus.insert(0x1000, 0x100, a, "a");
    bus.insert(0x2000, 0x10, b, "b");
    std::uint8_t data[4] = {};
    CHECK(bus.read(0x1004, data));
    CHECK(bus.write(0x200f, std::span<const std::uint8_t>(data, 1)));
    REQUIRE(a.reads == std::vector<std::uint64_t>{4});
    REQUIRE(b.writes == std::vector<std::uint64_t>{0xf});
    CHECK(data[0] == 0x5a);
    auto counters = bus.counters();
    REQUIRE(counters.size() == 2);
    CHECK(counters[0]->name == "a");
    CHECK(counters[0]->reads == 1);
    CHECK(counters[1]->writes == 1);
}

TEST_CASE("io bus: unclaimed reads are all-ones and counted", "[bus]") {
    xover::vmm::IoBus bus("pio");
    Recorder a;
    bus.insert(0x3f8, 8, a, "serial");
    std::uint8_t data[2] = {0, 0};
    CHECK_FALSE(bus.read(0x400, data));
    CHECK(data[0] == 0xff);
    CHECK(data[1] == 0xff);
    CHECK_FALSE(bus.read(0x3f7, data));
    CHECK_FALSE(bus.write(0x400, data));
    CHECK(bus.unclaimed_accesses() == 3);
    CHECK(a.reads.empty());
}

TEST_CASE("io bus remove unmaps exactly one range", "[bus]") {
    xover::vmm::IoBus bus("pio");
    Recorder a;
    bus.insert(0x10, 4, a, "a");
    CHECK_FALSE(bus.remove(0x11));
    CHECK(bus.remove(0x10));
    std::uint8_t data[1];
    CHECK_FALSE(bus.read(0x10, data));
    CHECK(bus.try_insert(0x10, 4, a, "a"));
}
