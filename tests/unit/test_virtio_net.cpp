// virtio-net end to end against fake memory and a fake backend: the
// transmit path (header stripping, gather, checksum offload, batching,
// back-pressure) and the receive path (header, mergeable buffers,
// starvation), with event-index interrupt suppression.
#include <catch2/catch.hpp>

#include <cstring>

#include "virtio_fakes.hpp"

using namespace xover::test;
using Buf = VirtqueueBuilder::Buf;
using SendResult = xover::net::Backend::SendResult;
namespace spec = xover::virtio_net::spec;

namespace {

std::vector<std::uint8_t> frame_of(std::size_t n, std::uint8_t seed = 1) {
    std::vector<std::uint8_t> f(n);
    for (std::size_t i = 0; i < n; ++i) f[i] = std::uint8_t(seed + i * 7);
    return f;
}

std::vector<std::uint8_t> with_header(std::span<const std::uint8_t> frame, spec::net::Header hdr = {}) {
    // Sized once, then filled: GCC 12 warns falsely (-Warray-bounds) on an
    // insert that grows a small vector.
    std::vector<std::uint8_t> out(sizeof hdr + frame.size());
    std::memcpy(out.data(), &hdr, sizeof hdr);
    std::copy(frame.begin(), frame.end(), out.begin() + sizeof hdr);
    return out;
}

spec::net::Header read_header(FakeGuestMemory& mem, std::uint64_t gpa) { return mem.at<spec::net::Header>(gpa); }

}  // namespace

TEST_CASE("virtio-net TX: header and frame in one descriptor", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up();
    auto frame = frame_of(60);
    auto head = r.tx.add({r.tx.readable(with_header(frame))});
    r.drv.notify(1);
    REQUIRE(r.backend.sent.size() == 1);
    CHECK(r.backend.sent[0] == frame);
    CHECK(r.tx.used_idx() == 1);
    CHECK(r.tx.used(0).id == head);
    CHECK(r.tx.used(0).len == 0);
    CHECK(r.msi.count(1) == 1);
    CHECK(r.counter("tx_frames") == 1);
    CHECK(r.counter("tx_bytes") == 60);
    CHECK(r.counter("notifies") == 1);
}

TEST_CASE("virtio-net TX: header and frame split across descriptors", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up();
    auto frame = frame_of(100);
    auto whole = with_header(frame);
    std::span<const std::uint8_t> w(whole);
    SECTION("direct chain, header split in two") {
        r.tx.add({r.tx.readable(w.subspan(0, 5)), r.tx.readable(w.subspan(5, 40)), r.tx.readable(w.subspan(45))});
    }
    SECTION("indirect table") {
        r.tx.add_indirect({r.tx.readable(w.subspan(0, 12)), r.tx.readable(w.subspan(12, 50)),
                           r.tx.readable(w.subspan(62))});
    }
    r.queue_notify_tx();
    REQUIRE(r.backend.sent.size() == 1);
    CHECK(r.backend.sent[0] == frame);
}

TEST_CASE("virtio-net TX: a batch gets one interrupt", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up();
    for (int i = 0; i < 5; ++i) r.tx.add({r.tx.readable(with_header(frame_of(64, std::uint8_t(i))))});
    r.net.queue_notify(1);  // as the ioeventfd path does
    CHECK(r.backend.sent.size() == 5);
    CHECK(r.tx.used_idx() == 5);
    CHECK(r.msi.count(1) == 1);
    CHECK(r.tx.avail_event() == 5);  // re-armed for the next frame
}

TEST_CASE("virtio-net TX: event idx suppresses interrupts", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up();
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    CHECK(r.msi.count(1) == 1);
    r.tx.set_used_event(3);  // driver: "interrupt me after the 4th"
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    CHECK(r.msi.count(1) == 1);
    CHECK(r.counter("interrupts_suppressed") == 2);
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    CHECK(r.msi.count(1) == 2);
}

TEST_CASE("virtio-net TX: VIRTQ_AVAIL_F_NO_INTERRUPT without event idx", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up(VirtioNetRig::kFeatures & ~(1ull << spec::kFeatureEventIdx));
    r.tx.set_avail_flags(spec::kAvailNoInterrupt);
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    CHECK(r.backend.sent.size() == 1);
    CHECK(r.msi.count(1) == 0);
}

TEST_CASE("virtio-net TX: checksum offload", "[virtio][net][tx][csum]") {
    // Ethernet + IPv4 + UDP, 11-byte payload (odd length on purpose).
    std::vector<std::uint8_t> f(14 + 20 + 8 + 11, 0);
    f[12] = 0x08;
    f[14] = 0x45;
    std::uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
    std::memcpy(&f[26], src, 4);
    std::memcpy(&f[30], dst, 4);
    f[23] = 17;
    std::uint16_t udp_len = 8 + 11;
    f[34] = 0x12; f[35] = 0x34; f[36] = 0x00; f[37] = 0x35;
    f[38] = std::uint8_t(udp_len >> 8); f[39] = std::uint8_t(udp_len);
    for (int i = 0; i < 11; ++i) f[42 + i] = std::uint8_t('a' + i);
    // The driver leaves the folded pseudo-header sum in the field.
    std::uint32_t pseudo = (10 << 8) + 0 + (0 << 8) + 1 + (10 << 8) + 0 + (0 << 8) + 2 + 17 + udp_len;
    while (pseudo >> 16) pseudo = (pseudo & 0xffff) + (pseudo >> 16);
    f[40] = std::uint8_t(pseudo >> 8);
    f[41] = std::uint8_t(pseudo);
    spec::net::Header hdr{};
    hdr.flags = spec::net::kHeaderNeedsCsum;
    hdr.csum_start = 34;
    hdr.csum_offset = 6;

    VirtioNetRig r;
    r.bring_up();
    auto packet = with_header(f, hdr);
    auto buf = r.tx.readable(packet);
    r.tx.add({buf});
    r.queue_notify_tx();
    REQUIRE(r.backend.sent.size() == 1);
    auto& out = r.backend.sent[0];
    // Verify: pseudo header + UDP segment sums to 0xffff.
    std::uint32_t sum = (10 << 8) + 1 + (10 << 8) + 2 + 17 + udp_len;
    for (std::size_t i = 34; i < out.size(); i += 2)
        sum += std::uint32_t(out[i]) << 8 | (i + 1 < out.size() ? out[i + 1] : 0);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    CHECK(sum == 0xffff);
    CHECK((out[40] | out[41]) != 0);
    // The guest's buffer is left alone.
    CHECK(r.tx.bytes(buf, packet.size()) == packet);
}

TEST_CASE("virtio-net TX: back-pressure is lossless", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up();
    r.backend.result = SendResult::Busy;
    r.tx.add({r.tx.readable(with_header(frame_of(64, 1)))});
    r.tx.add({r.tx.readable(with_header(frame_of(64, 2)))});
    r.queue_notify_tx();
    CHECK(r.backend.sent.empty());
    CHECK(r.tx.used_idx() == 0);  // nothing consumed
    CHECK(r.counter("tx_busy") == 1);
    r.queue_notify_tx();  // still stalled: does not even try
    CHECK(r.backend.refused == 1);
    r.backend.result = SendResult::Sent;
    r.net.resume_tx();
    REQUIRE(r.backend.sent.size() == 2);
    CHECK(r.backend.sent[0] == frame_of(64, 1));
    CHECK(r.backend.sent[1] == frame_of(64, 2));
    CHECK(r.tx.used_idx() == 2);
    CHECK(r.msi.count(1) == 1);
}

TEST_CASE("virtio-net TX: a backend drop completes the chain", "[virtio][net][tx]") {
    VirtioNetRig r;
    r.bring_up();
    r.backend.result = SendResult::Dropped;
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    CHECK(r.tx.used_idx() == 1);
    CHECK(r.counter("tx_dropped_backend") == 1);
}

TEST_CASE("virtio-net TX: notifications before DRIVER_OK are deferred", "[virtio][net][tx]") {
    VirtioNetRig r;
    REQUIRE(r.drv.negotiate(VirtioNetRig::kFeatures));
    r.drv.setup_queue(0, r.rx.layout());
    r.drv.setup_queue(1, r.tx.layout());
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.drv.notify(1);
    CHECK(r.backend.sent.empty());
    r.drv.driver_ok();  // the device starts and looks at its queues
    CHECK(r.backend.sent.size() == 1);
}

TEST_CASE("virtio-net RX: one frame into one buffer", "[virtio][net][rx]") {
    VirtioNetRig r;
    r.bring_up();
    auto buf = r.rx.writable(1526);
    auto head = r.rx.add({buf});
    auto frame = frame_of(200);
    CHECK(r.net.deliver(frame));
    CHECK(r.rx.used_idx() == 1);
    CHECK(r.rx.used(0).id == head);
    CHECK(r.rx.used(0).len == 212);
    auto hdr = read_header(r.mem, buf.addr);
    CHECK(hdr.num_buffers == 1);
    CHECK(hdr.flags == 0);
    CHECK(hdr.gso_type == spec::net::kGsoNone);
    std::vector<std::uint8_t> got(200);
    r.mem.peek(buf.addr + 12, got.data(), got.size());
    CHECK(got == frame);
    CHECK(r.msi.count(0) == 1);
    CHECK(r.counter("rx_frames") == 1);
    CHECK(r.counter("rx_bytes") == 200);
}

TEST_CASE("virtio-net RX: header and frame across a multi-descriptor chain", "[virtio][net][rx]") {
    VirtioNetRig r;
    r.bring_up();
    Buf a = r.rx.writable(4), b = r.rx.writable(30), c = r.rx.writable(100);
    r.rx.add_indirect({a, b, c});
    auto frame = frame_of(90);
    CHECK(r.net.deliver(frame));
    CHECK(r.rx.used(0).len == 102);
    std::vector<std::uint8_t> all;
    for (auto [buf, n] : {std::pair{a, 4u}, std::pair{b, 30u}, std::pair{c, 68u}}) {
        auto part = r.rx.bytes(buf, n);
        all.insert(all.end(), part.begin(), part.end());
    }
    spec::net::Header hdr;
    std::memcpy(&hdr, all.data(), 12);
    CHECK(hdr.num_buffers == 1);
    CHECK(std::vector<std::uint8_t>(all.begin() + 12, all.end()) == frame);
}

TEST_CASE("virtio-net RX: mergeable buffers", "[virtio][net][rx]") {
    VirtioNetRig r;
    r.bring_up();
    Buf b[4] = {r.rx.writable(64), r.rx.writable(64), r.rx.writable(64), r.rx.writable(64)};
    for (auto& x : b) r.rx.add({x});
    auto frame = frame_of(150);  // 162 with the header: 64 + 64 + 34
    CHECK(r.net.deliver(frame));
    CHECK(r.rx.used_idx() == 3);
    CHECK(r.rx.used(0).len == 64);
    CHECK(r.rx.used(1).len == 64);
    CHECK(r.rx.used(2).len == 34);
    CHECK(read_header(r.mem, b[0].addr).num_buffers == 3);
    std::vector<std::uint8_t> got = r.rx.bytes(b[0], 64);
    for (int i : {1, 2}) {
        auto part = r.rx.bytes(b[i], i == 2 ? 34 : 64);
        got.insert(got.end(), part.begin(), part.end());
    }
    CHECK(std::vector<std::uint8_t>(got.begin() + 12, got.end()) == frame);
    CHECK(r.msi.count(0) == 1);  // one interrupt for the merged frame
    // The fourth buffer is still there for the next frame.
    CHECK(r.net.deliver(frame_of(10)));
    CHECK(r.rx.used(3).len == 22);
    CHECK(read_header(r.mem, b[3].addr).num_buffers == 1);
}

TEST_CASE("virtio-net RX: not enough buffers leaves everything untouched", "[virtio][net][rx]") {
    VirtioNetRig r;
    r.bring_up();
    r.rx.add({r.rx.writable(64)});
    CHECK_FALSE(r.net.deliver(frame_of(100)));  // needs 112 bytes, has 64
    CHECK(r.rx.used_idx() == 0);
    CHECK(r.counter("rx_no_buffer") == 1);
    CHECK(r.rx.avail_event() == 0);  // asks to be notified from here on
    unsigned calls = r.backend.rx_space_calls;
    r.rx.add({r.rx.writable(64)});
    r.drv.notify(0);
    CHECK(r.backend.rx_space_calls == calls + 1);
    CHECK(r.net.deliver(frame_of(100)));
    CHECK(r.rx.used_idx() == 2);
}

TEST_CASE("virtio-net RX: empty ring", "[virtio][net][rx]") {
    VirtioNetRig r;
    r.bring_up();
    CHECK_FALSE(r.net.deliver(frame_of(60)));
    CHECK(r.counter("rx_no_buffer") == 1);
    CHECK(r.msi.fired.empty());
}

TEST_CASE("virtio-net RX: without MRG_RXBUF", "[virtio][net][rx]") {
    VirtioNetRig r;
    r.bring_up(VirtioNetRig::kFeatures & ~(1ull << spec::net::kFeatureMrgRxbuf));
    auto small = r.rx.writable(64);
    r.rx.add({small});
    CHECK(r.net.deliver(frame_of(100)));  // too big for the buffer: dropped, counted
    CHECK(r.counter("rx_oversize") == 1);
    CHECK(r.rx.used_idx() == 0);           // buffer kept
    CHECK(r.net.deliver(frame_of(40)));
    CHECK(r.rx.used(0).len == 52);
    CHECK(read_header(r.mem, small.addr).num_buffers == 1);
}

TEST_CASE("virtio-net RX: device not ready", "[virtio][net][rx]") {
    VirtioNetRig r;
    CHECK_FALSE(r.net.deliver(frame_of(60)));
    CHECK(r.counter("rx_not_ready") == 1);
    r.bring_up();
    r.drv.set_status(0);  // reset
    CHECK_FALSE(r.net.deliver(frame_of(60)));
}

TEST_CASE("virtio-net RX: DRIVER_OK tells the backend there is room", "[virtio][net][rx]") {
    VirtioNetRig r;
    unsigned before = r.backend.rx_space_calls;
    r.bring_up();
    CHECK(r.backend.rx_space_calls == before + 1);
}

TEST_CASE("virtio-net reset mid-traffic, then a new driver", "[virtio][net]") {
    VirtioNetRig r;
    r.bring_up();
    r.backend.result = SendResult::Busy;
    r.tx.add({r.tx.readable(with_header(frame_of(64)))});
    r.queue_notify_tx();
    r.drv.set_status(0);
    CHECK(r.drv.status() == 0);
    r.backend.result = SendResult::Sent;
    r.net.resume_tx();  // nothing to do after reset
    CHECK(r.backend.sent.empty());
    // A fresh driver with fresh rings.
    r.mem.bytes.assign(r.mem.bytes.size(), 0);
    VirtqueueBuilder rx2(r.mem, 0x30000, 8, 0x300000), tx2(r.mem, 0x38000, 8, 0x380000);
    REQUIRE(r.drv.negotiate(VirtioNetRig::kFeatures));
    r.drv.setup_queue(0, rx2.layout());
    r.drv.setup_queue(1, tx2.layout());
    r.drv.driver_ok();
    tx2.add({tx2.readable(with_header(frame_of(64)))});
    r.drv.notify(1);
    CHECK(r.backend.sent.size() == 1);
    CHECK(tx2.used_idx() == 1);
}
