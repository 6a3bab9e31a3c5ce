// The VM's memory slot allocator: consecutive ranges, never one slot twice,
// a one-line error when the VM runs out.
#include <catch2/catch.hpp>

#include <set>

#include "xover/error.hpp"
#include "xover/vmm/memory_slots.hpp"

using xover::vmm::MemorySlots;

TEST_CASE("memory slots come in consecutive ranges from 0", "[vmm][slots]") {
    MemorySlots slots(32);
    CHECK(slots.allocate(2, "guest RAM") == 0);
    CHECK(slots.allocate(2, "vm.nic0") == 2);
    CHECK(slots.allocate(1, "vm.nic1") == 4);
    CHECK(slots.used() == 5);
    CHECK(slots.limit() == 32);
}

TEST_CASE("windows never share a slot with RAM or each other, up to the limit", "[vmm][slots]") {
    constexpr std::uint32_t kLimit = 9;
    MemorySlots slots(kLimit);
    std::set<std::uint32_t> taken;
    auto take = [&](std::uint32_t count, const char* what) {
        std::uint32_t first = slots.allocate(count, what);
        for (std::uint32_t s = first; s < first + count; ++s) {
            CHECK(s < kLimit);
            CHECK(taken.insert(s).second);
        }
    };
    take(2, "guest RAM");  // below and above the 32-bit hole
    for (int nic = 0; nic < 3; ++nic) take(2, "window");
    CHECK(taken.size() == 8);
    take(1, "last");
    CHECK(taken.size() == kLimit);
}

TEST_CASE("running out of memory slots names who asked", "[vmm][slots]") {
    MemorySlots slots(3);
    slots.allocate(2, "guest RAM");
    try {
        slots.allocate(2, "vm.nic0");
        FAIL("allocated past the limit");
    } catch (const xover::Error& e) {
        CHECK(std::string(e.what()) == "vm.nic0: no KVM memory slots left (2 needed, 1 of 3 free)");
    }
    CHECK(slots.used() == 2);  // a refused request takes nothing
    CHECK(slots.allocate(1, "vm.nic1") == 2);
    CHECK_THROWS_AS(slots.allocate(1, "vm.nic2"), xover::Error);
}
