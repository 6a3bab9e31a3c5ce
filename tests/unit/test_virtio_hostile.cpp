// A hostile or broken guest driver against virtio-net: malformed chains
// are dropped and counted, malformed rings set DEVICE_NEEDS_RESET with a
// configuration interrupt, and nothing crashes, hangs or touches memory
// outside the guest (the ASan build checks the last part).
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "virtio_fakes.hpp"

using namespace xover::test;
using Dev = xover::virtio_net::VirtioPciDevice;
namespace spec = xover::virtio_net::spec;

namespace {

std::vector<std::uint8_t> packet(std::size_t n, spec::net::Header hdr = {}) {
    std::vector<std::uint8_t> out(12 + n, 0x5a);
    std::memcpy(out.data(), &hdr, 12);
    return out;
}

// The device dropped the chain: completed with length 0, counted, no reset.
void check_dropped(VirtioNetRig& r, const char* counter) {
    CHECK(r.backend.sent.empty());
    CHECK(r.tx.used_idx() == 1);
    CHECK(r.tx.used(0).len == 0);
    CHECK(r.counter(counter) == 1);
    CHECK(r.counter("hostile") >= 1);
    CHECK_FALSE(r.needs_reset());
    // And the queue keeps working.
    r.tx.add({r.tx.readable(packet(60))});
    r.queue_notify_tx();
    CHECK(r.backend.sent.size() == 1);
}

// The device gave up on the rings: NEEDS_RESET, config interrupt, stopped.
void check_needs_reset(VirtioNetRig& r) {
    CHECK(r.needs_reset());
    CHECK(r.msi.count(2) == 1);  // configuration change vector
    CHECK(r.counter("needs_reset") >= 1);
    auto sent = r.backend.sent.size();
    r.tx.add({r.tx.readable(packet(60))});
    r.queue_notify_tx();
    CHECK(r.backend.sent.size() == sent);  // stopped until reset
    CHECK_FALSE(r.net.deliver(std::vector<std::uint8_t>(60, 1)));
    // A reset and a fresh bring-up recover the device.
    r.mem.bytes.assign(r.mem.bytes.size(), 0);
    VirtqueueBuilder rx2(r.mem, 0x30000, 8, 0x300000), tx2(r.mem, 0x38000, 8, 0x380000);
    REQUIRE(r.drv.negotiate(VirtioNetRig::kFeatures));
    CHECK_FALSE(r.needs_reset());
    r.drv.setup_queue(0, rx2.layout(), 0);
    r.drv.setup_queue(1, tx2.layout(), 1);
    r.drv.driver_ok();
    tx2.add({tx2.readable(packet(60))});
    r.drv.notify(1);
    CHECK(r.backend.sent.size() == sent + 1);
}

}  // namespace

TEST_CASE("hostile TX chains are dropped and counted", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up();
    SECTION("device-writable descriptor in a TX chain") {
        r.tx.add({r.tx.readable(packet(60)), r.tx.writable(16)});
        r.queue_notify_tx();
        check_dropped(r, "tx_write_only");
    }
    SECTION("only zero-length descriptors") {
        r.tx.add({{0x200000, 0, false}, {0x200000, 0, false}});
        r.queue_notify_tx();
        check_dropped(r, "tx_too_short");
    }
    SECTION("header only") {
        r.tx.add({r.tx.readable(packet(0))});
        r.queue_notify_tx();
        check_dropped(r, "tx_too_short");
    }
    SECTION("segmentation offload that was not offered") {
        spec::net::Header h{};
        h.gso_type = 1;  // TCPv4
        r.tx.add({r.tx.readable(packet(60, h))});
        r.queue_notify_tx();
        check_dropped(r, "tx_gso");
    }
    SECTION("checksum field outside the frame") {
        spec::net::Header h{};
        h.flags = spec::net::kHeaderNeedsCsum;
        h.csum_start = 50;
        h.csum_offset = 9;  // 50 + 9 + 2 > 60
        r.tx.add({r.tx.readable(packet(60, h))});
        r.queue_notify_tx();
        check_dropped(r, "tx_bad_csum");
    }
    SECTION("checksum start far beyond the frame") {
        spec::net::Header h{};
        h.flags = spec::net::kHeaderNeedsCsum;
        h.csum_start = 0xffff;
        h.csum_offset = 0xffff;
        r.tx.add({r.tx.readable(packet(60, h))});
        r.queue_notify_tx();
        check_dropped(r, "tx_bad_csum");
    }
    SECTION("frame larger than 64 KiB") {
        r.tx.add({r.tx.readable(packet(40000)), r.tx.readable(packet(40000))});
        r.queue_notify_tx();
        check_dropped(r, "tx_oversize");
    }
}

TEST_CASE("NEEDS_CSUM without the CSUM feature is sent as is", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up(VirtioNetRig::kFeatures & ~(1ull << spec::net::kFeatureCsum));
    spec::net::Header h{};
    h.flags = spec::net::kHeaderNeedsCsum;
    h.csum_start = 20;
    r.tx.add({r.tx.readable(packet(60, h))});
    r.queue_notify_tx();
    REQUIRE(r.backend.sent.size() == 1);
    CHECK(r.backend.sent[0] == std::vector<std::uint8_t>(60, 0x5a));
    CHECK(r.counter("tx_csum_not_negotiated") == 1);
}

TEST_CASE("malformed TX rings set DEVICE_NEEDS_RESET", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up();
    using spec::kDescIndirect;
    using spec::kDescNext;
    auto body = r.tx.readable(packet(60));
    SECTION("descriptor loop") {
        r.tx.write_desc(0, body.addr, body.len, kDescNext, 1);
        r.tx.write_desc(1, body.addr, body.len, kDescNext, 0);
        r.tx.publish(0);
    }
    SECTION("avail idx jumps past the queue size") { r.tx.set_avail_idx(17); }
    SECTION("avail idx jumps backwards") { r.tx.set_avail_idx(0xfff0); }
    SECTION("head index out of range") { r.tx.publish(16); }
    SECTION("buffer outside guest memory") { r.tx.add({{(4 << 20) - 8, 72, false}}); }
    SECTION("buffer length huge") { r.tx.add({{0x200000, 0xffffffff, false}}); }
    SECTION("nested indirect") {
        auto t = r.tx.alloc(16);
        r.tx.write_desc_at(t, r.tx.alloc(16), 16, kDescIndirect, 0);
        r.tx.write_desc(0, t, 16, kDescIndirect, 0);
        r.tx.publish(0);
    }
    SECTION("indirect table with a bad length") {
        r.tx.write_desc(0, r.tx.alloc(64), 17, kDescIndirect, 0);
        r.tx.publish(0);
    }
    SECTION("indirect table claims to be enormous") {
        r.tx.write_desc(0, 0, 0xfffffff0, kDescIndirect, 0);
        r.tx.publish(0);
    }
    r.queue_notify_tx();
    check_needs_reset(r);
}

TEST_CASE("malformed RX rings set DEVICE_NEEDS_RESET", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up();
    SECTION("chain longer than the queue (loop)") {
        auto b = r.rx.writable(64);
        r.rx.write_desc(5, b.addr, b.len, spec::kDescWrite | spec::kDescNext, 5);
        r.rx.publish(5);
    }
    SECTION("buffer outside memory") { r.rx.add({{~0ull - 100, 2000, true}}); }
    CHECK_FALSE(r.net.deliver(std::vector<std::uint8_t>(60, 1)));
    check_needs_reset(r);
}

TEST_CASE("unusable RX buffers are returned empty", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up();
    SECTION("smaller than the header") {
        r.rx.add({r.rx.writable(8)});
    }
    SECTION("device-readable only") {
        r.rx.add({r.rx.readable("read only buffer")});
    }
    auto good = r.rx.writable(2048);
    auto good_head = r.rx.add({good});
    CHECK(r.net.deliver(std::vector<std::uint8_t>(60, 1)));
    CHECK(r.counter("rx_bad_buffer") == 1);
    REQUIRE(r.rx.used_idx() == 2);
    CHECK(r.rx.used(0).id == good_head);  // the frame's buffer first
    CHECK(r.rx.used(0).len == 72);
    CHECK(r.rx.used(1).len == 0);
    CHECK_FALSE(r.needs_reset());
}

TEST_CASE("a frame that cannot fit even a full ring is dropped, not stuck", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up();
    for (int i = 0; i < 16; ++i) r.rx.add({r.rx.writable(16)});
    CHECK(r.net.deliver(std::vector<std::uint8_t>(1500, 1)));  // 16 * 16 < 1512
    CHECK(r.counter("rx_oversize") == 1);
    CHECK(r.rx.used_idx() == 0);
    CHECK(r.net.deliver(std::vector<std::uint8_t>(50, 1)));  // 62 bytes: 4 buffers
    CHECK(r.rx.used_idx() == 4);
}

TEST_CASE("bad queue configuration sets DEVICE_NEEDS_RESET at enable", "[virtio][hostile]") {
    VirtioNetRig r;
    REQUIRE(r.drv.negotiate(VirtioNetRig::kFeatures));
    auto l = r.tx.layout();
    SECTION("size not a power of two") { l.size = 12; }
    SECTION("size above the maximum") { l.size = 512; }
    SECTION("size zero") { l.size = 0; }
    SECTION("rings outside guest memory") { l.used = 0xfffff000; }
    SECTION("misaligned descriptor table") { l.desc += 4; }
    r.drv.setup_queue(1, l);
    CHECK(r.needs_reset());
    r.drv.set_common(vcfg::kQSelect, 2, 1);
    CHECK(r.drv.common(vcfg::kQEnable, 2) == 0);
    r.drv.driver_ok();
    CHECK_FALSE(r.net.deliver(std::vector<std::uint8_t>(60, 1)));
    r.drv.set_status(0);
    CHECK(r.drv.status() == 0);
}

TEST_CASE("notifies for queues that do not exist are ignored", "[virtio][hostile]") {
    VirtioNetRig r;
    r.bring_up();
    r.net.queue_notify(2);
    r.net.queue_notify(0xffff);
    r.drv.write(Dev::kNotifyOffset + 2, 2, 0);  // unaligned inside the region
    r.drv.write(Dev::kNotifyOffset + 8, 2, 2);  // past the last queue
    CHECK_FALSE(r.needs_reset());
}

TEST_CASE("random rings and register writes never crash", "[virtio][hostile][fuzz]") {
    std::mt19937_64 rng(12345);
    for (int round = 0; round < 200; ++round) {
        VirtioNetRig r;
        r.bring_up();
        // Scribble over both rings' descriptors and avail rings.
        for (auto* vq : {&r.rx, &r.tx}) {
            for (int i = 0; i < 16; ++i) {
                std::uint64_t addr = rng() % 3 == 0 ? rng() : 0x100000 + rng() % (3 << 20);
                std::uint32_t len = rng() % 4 == 0 ? std::uint32_t(rng()) : std::uint32_t(rng() % 4096);
                vq->write_desc(std::uint16_t(i), addr, len, std::uint16_t(rng() % 8), std::uint16_t(rng() % 20));
            }
            for (int i = 0; i < 16; ++i) {
                std::uint16_t head = std::uint16_t(rng() % 18);
                r.mem.poke(vq->layout().avail + 4 + 2 * i, &head, 2);
            }
            vq->set_avail_idx(std::uint16_t(rng() % 20));
            vq->set_used_event(std::uint16_t(rng()));
        }
        r.queue_notify_tx();
        r.net.deliver(std::vector<std::uint8_t>(rng() % 3000, 7));
        r.drv.notify(0);
        // Random register writes anywhere in the BAR.
        for (int i = 0; i < 20; ++i) {
            unsigned width = 1u << (rng() % 4);
            std::uint64_t offset = rng() % Dev::kBarSize;
            offset &= ~std::uint64_t(width - 1);
            r.drv.write(offset, width, rng());
            r.drv.read(rng() % Dev::kBarSize & ~7ull, 8);
        }
        r.net.deliver(std::vector<std::uint8_t>(60, 7));
        r.net.resume_tx();
        (void)r.net.counters();
    }
    SUCCEED();
}
