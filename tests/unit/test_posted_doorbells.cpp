// Posted doorbells: learning that a driver flushes its doorbell
// (vmm::FlushedDoorbell), the e1000 asking for RDT posting once it has,
// and applying KVM's coalesced-MMIO ring in order (kvm::CoalescedMmioRing).
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "e1000_ring_builder.hpp"
#include "xover/kvm/coalesced_mmio.hpp"
#include "xover/vmm/flushed_doorbell.hpp"

using namespace xover;
using xover::vmm::FlushedDoorbell;

namespace {

constexpr std::uint64_t kMs = 1'000'000;

// `count` doorbells, each flushed `gap_ns` later; true if posting started.
bool flush_doorbells(FlushedDoorbell& d, std::uint64_t& now, unsigned count, std::uint64_t gap_ns) {
    bool started = false;
    for (unsigned i = 0; i < count; ++i) {
        d.written(now += 10 * kMs);
        started |= d.accessed(now += gap_ns);
    }
    return started;
}

}  // namespace

TEST_CASE("a doorbell flushed at once, streak after streak, gets posted", "[posted-writes]") {
    FlushedDoorbell d;
    std::uint64_t now = 0;
    CHECK_FALSE(flush_doorbells(d, now, FlushedDoorbell::kFirstStreak - 1, 30'000));
    CHECK_FALSE(d.posting());
    CHECK(flush_doorbells(d, now, 1, 30'000));
    CHECK(d.posting());
}

TEST_CASE("a doorbell that is not flushed is never posted", "[posted-writes]") {
    FlushedDoorbell d;
    std::uint64_t now = 0;
    SECTION("doorbells back to back") {
        for (int i = 0; i < 100; ++i) d.written(now += 1000);
        CHECK_FALSE(d.accessed(now += 1000));
        CHECK_FALSE(d.posting());
    }
    SECTION("the next access comes too late") {
        CHECK_FALSE(flush_doorbells(d, now, 100, FlushedDoorbell::kFlushWindowNs + 1));
        CHECK_FALSE(d.posting());
    }
    SECTION("one late flush restarts the streak") {
        CHECK_FALSE(flush_doorbells(d, now, FlushedDoorbell::kFirstStreak - 1, 1000));
        CHECK_FALSE(flush_doorbells(d, now, 1, 5 * kMs));
        CHECK_FALSE(flush_doorbells(d, now, FlushedDoorbell::kFirstStreak - 1, 1000));
        CHECK_FALSE(d.posting());
        CHECK(flush_doorbells(d, now, 1, 1000));
    }
    SECTION("accesses without a doorbell teach nothing") {
        for (int i = 0; i < 100; ++i) CHECK_FALSE(d.accessed(now += 1000));
        CHECK_FALSE(d.posting());
    }
}

TEST_CASE("a stale posting needs twice the streak to come back, up to a cap", "[posted-writes]") {
    FlushedDoorbell d;
    std::uint64_t now = 0;
    REQUIRE(flush_doorbells(d, now, FlushedDoorbell::kFirstStreak, 1000));
    d.stale();
    CHECK_FALSE(d.posting());
    CHECK_FALSE(flush_doorbells(d, now, 2 * FlushedDoorbell::kFirstStreak - 1, 1000));
    CHECK(flush_doorbells(d, now, 1, 1000));
    for (int i = 0; i < 20; ++i) {
        d.stale();
        flush_doorbells(d, now, FlushedDoorbell::kLongestStreak, 1000);
    }
    CHECK(d.posting());  // the streak never grows past the cap
}

TEST_CASE("the e1000 asks for RDT posting once its driver flushes RDT, and stops at reset", "[posted-writes]") {
    test::E1000Rig rig;
    rig.use_fake_timer();
    std::vector<bool> asked;
    rig.nic.set_rdt_posting([&](bool post) { asked.push_back(post); });
    for (unsigned i = 0; i < FlushedDoorbell::kFirstStreak; ++i) {
        rig.wr(e1000::reg::RDT, i);
        rig.advance_ns(20'000);
        rig.rd(e1000::reg::STATUS);
        rig.advance_ns(kMs);
    }
    REQUIRE(asked == std::vector<bool>{true});
    CHECK(rig.counter("rdt_posting_started") == 1);
    // Posted writes arrive as ordinary writes: the register still works.
    rig.wr(e1000::reg::RDT, 5);
    CHECK(rig.rd(e1000::reg::RDT) == 5);
    rig.wr(e1000::reg::CTRL, e1000::ctrl::RST);
    CHECK(asked == std::vector<bool>{true, false});
    rig.nic.rdt_posting_stale();
    CHECK(rig.counter("rdt_posting_stale") == 1);
}

TEST_CASE("an e1000 driver that polls without flushing keeps its RDT exits", "[posted-writes]") {
    test::E1000Rig rig;
    rig.use_fake_timer();
    int asked = 0;
    rig.nic.set_rdt_posting([&](bool) { ++asked; });
    for (unsigned i = 0; i < 1000; ++i) {
        rig.wr(e1000::reg::RDT, i % 256);
        rig.advance_ns(100'000);
    }
    CHECK(asked == 0);
}

namespace {

// A coalesced-MMIO ring page as KVM lays it out: first, last, entries.
struct FakeRingPage {
    static constexpr std::size_t kPage = 4096;
    alignas(8) std::uint8_t bytes[kPage] = {};
    std::uint32_t& first() { return *reinterpret_cast<std::uint32_t*>(bytes); }
    std::uint32_t& last() { return *reinterpret_cast<std::uint32_t*>(bytes + 4); }
    kvm_coalesced_mmio& entry(std::uint32_t i) { return reinterpret_cast<kvm_coalesced_mmio*>(bytes + 8)[i]; }
    std::uint32_t capacity() const { return std::uint32_t((kPage - 8) / sizeof(kvm_coalesced_mmio)); }
    // What the kernel does for one posted 4-byte write.
    void post(std::uint64_t address, std::uint32_t value) {
        auto& e = entry(last());
        e.phys_addr = address;
        e.len = 4;
        e.pio = 0;
        std::memcpy(e.data, &value, 4);
        last() = (last() + 1) % capacity();
    }
};

std::vector<std::pair<std::uint64_t, std::uint32_t>> drain_all(kvm::CoalescedMmioRing& ring) {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> seen;
    ring.drain([&](const kvm::CoalescedMmioRing::Write& w) {
        std::uint32_t v = 0;
        std::memcpy(&v, w.data.data(), std::min<std::size_t>(4, w.data.size()));
        seen.emplace_back(w.address, v);
    });
    return seen;
}

}  // namespace

TEST_CASE("the coalesced-MMIO ring is applied oldest first, across its wrap", "[posted-writes]") {
    FakeRingPage page;
    kvm::CoalescedMmioRing ring(page.bytes, FakeRingPage::kPage);
    REQUIRE(ring.capacity() == page.capacity());
    CHECK(ring.empty());
    CHECK(drain_all(ring).empty());
    page.first() = page.last() = ring.capacity() - 2;  // three writes wrap around
    page.post(0x1000, 1);
    page.post(0x1004, 2);
    page.post(0x1000, 3);
    CHECK_FALSE(ring.empty());
    auto seen = drain_all(ring);
    REQUIRE(seen.size() == 3);
    CHECK(seen[0] == std::pair<std::uint64_t, std::uint32_t>{0x1000, 1});
    CHECK(seen[1] == std::pair<std::uint64_t, std::uint32_t>{0x1004, 2});
    CHECK(seen[2] == std::pair<std::uint64_t, std::uint32_t>{0x1000, 3});
    CHECK(page.first() == page.last());
    CHECK(ring.empty());
    CHECK(ring.drains() == 1);
}

TEST_CASE("a coalesced-MMIO ring with indices past its end is left alone", "[posted-writes]") {
    FakeRingPage page;
    kvm::CoalescedMmioRing ring(page.bytes, FakeRingPage::kPage);
    page.last() = ring.capacity() + 7;
    CHECK(drain_all(ring).empty());
    page.last() = 0;
    page.first() = ~0u;
    CHECK(drain_all(ring).empty());
}

TEST_CASE("an entry longer than 8 bytes is applied as 8", "[posted-writes]") {
    FakeRingPage page;
    kvm::CoalescedMmioRing ring(page.bytes, FakeRingPage::kPage);
    page.post(0x2000, 9);
    page.entry(0).len = 4096;
    std::size_t width = 0;
    ring.drain([&](const kvm::CoalescedMmioRing::Write& w) { width = w.data.size(); });
    CHECK(width == 8);
}
