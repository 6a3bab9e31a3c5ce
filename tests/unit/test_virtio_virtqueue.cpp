// The split-virtqueue walker on its own: chains, indirect tables, used
// ring, 16-bit index wrap, event-index arithmetic and malformed rings.
#include <catch2/catch.hpp>

#include "fake_guest_memory.hpp"
#include "virtqueue_builder.hpp"
#include "xover/virtio_net/virtqueue.hpp"

using xover::test::VirtqueueBuilder;
using xover::virtio_net::DescriptorChain;
using xover::virtio_net::need_event;
using xover::virtio_net::RingError;
using xover::virtio_net::Virtqueue;
using Pop = Virtqueue::PopStatus;

namespace {

struct Fixture {
    FakeGuestMemory mem{1 << 20};
    VirtqueueBuilder vq{mem, 0x10000, 8};
    Virtqueue q;
    DescriptorChain chain;
    explicit Fixture(bool event_idx = false, bool indirect = true) { REQUIRE(q.enable(mem, vq.layout(), event_idx, indirect)); }
};

std::string text(std::span<std::uint8_t> s) { return std::string(s.begin(), s.end()); }

}  // namespace

TEST_CASE("need_event follows vring_need_event across the 16-bit wrap", "[virtio][virtqueue]") {
    CHECK(need_event(0, 1, 0));          // event 0 crossed moving 0 -> 1
    CHECK_FALSE(need_event(1, 1, 0));    // event 1 not yet crossed
    CHECK(need_event(5, 10, 0));
    CHECK_FALSE(need_event(10, 10, 0));
    CHECK_FALSE(need_event(3, 3, 3));    // no movement, no event
    // Around wrap: indices 0xfffe -> 0x0002 cross 0xffff, 0x0000, 0x0001.
    CHECK(need_event(0xffff, 0x0002, 0xfffe));
    CHECK(need_event(0x0000, 0x0002, 0xfffe));
    CHECK(need_event(0x0001, 0x0002, 0xfffe));
    CHECK_FALSE(need_event(0x0002, 0x0002, 0xfffe));
    CHECK_FALSE(need_event(0xfffd, 0x0002, 0xfffe));
}

TEST_CASE("virtqueue refuses bad layouts at enable", "[virtio][virtqueue]") {
    FakeGuestMemory mem(1 << 20);
    VirtqueueBuilder vq(mem, 0x10000, 8);
    Virtqueue q;
    auto l = vq.layout();
    SECTION("size not a power of two") { l.size = 6; }
    SECTION("size zero") { l.size = 0; }
    SECTION("size too large") { l.size = 2048; }
    SECTION("misaligned descriptor table") { l.desc += 8; }
    SECTION("misaligned used ring") { l.used += 2; }
    SECTION("used ring outside memory") { l.used = (1 << 20) - 16; }
    SECTION("avail ring address overflows") { l.avail = ~0ull - 1; }
    CHECK_FALSE(q.enable(mem, l, false, false));
    CHECK_FALSE(q.enabled());
}

TEST_CASE("virtqueue walks a direct chain of readable and writable buffers", "[virtio][virtqueue]") {
    Fixture f;
    auto head = f.vq.add({f.vq.readable("hello "), f.vq.readable("world"), f.vq.writable(100)});
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    CHECK(f.chain.head() == head);
    REQUIRE(f.chain.segments().size() == 3);
    CHECK(text(f.chain.segments()[0].bytes) == "hello ");
    CHECK(text(f.chain.segments()[1].bytes) == "world");
    CHECK(f.chain.segments()[2].device_writable);
    CHECK(f.chain.readable_bytes() == 11);
    CHECK(f.chain.writable_bytes() == 100);
    CHECK(f.q.pop(f.chain) == Pop::Empty);
}

TEST_CASE("virtqueue expands indirect tables", "[virtio][virtqueue]") {
    Fixture f;
    auto head = f.vq.add_indirect({f.vq.readable("ab"), f.vq.readable("cd"), f.vq.writable(8)});
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    CHECK(f.chain.head() == head);
    REQUIRE(f.chain.segments().size() == 3);
    CHECK(text(f.chain.segments()[1].bytes) == "cd");
    CHECK(f.chain.writable_bytes() == 8);
}

TEST_CASE("virtqueue skips zero-length descriptors", "[virtio][virtqueue]") {
    Fixture f;
    f.vq.add({f.vq.readable("a"), {0x1234, 0, false}, f.vq.readable("b")});
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    CHECK(f.chain.segments().size() == 2);
}

TEST_CASE("virtqueue used ring and unpop", "[virtio][virtqueue]") {
    Fixture f;
    auto a = f.vq.add({f.vq.writable(10)});
    auto b = f.vq.add({f.vq.writable(20)});
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    CHECK(f.chain.head() == b);
    f.q.unpop(2);
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    CHECK(f.chain.head() == a);
    f.q.add_used(a, 7);
    CHECK(f.vq.used_idx() == 0);  // not visible before publish
    f.q.publish_used();
    CHECK(f.vq.used_idx() == 1);
    CHECK(f.vq.used(0).id == a);
    CHECK(f.vq.used(0).len == 7);
}

TEST_CASE("virtqueue indices wrap at 16 bits", "[virtio][virtqueue]") {
    Fixture f;
    // Run the ring through 65536 + 5 chains; indices and slots must wrap.
    auto buf = f.vq.writable(4);
    for (std::uint32_t i = 0; i < 65541; ++i) {
        f.vq.add({buf});
        REQUIRE(f.q.pop(f.chain) == Pop::Chain);
        f.q.add_used(f.chain.head(), i);
        f.q.publish_used();
    }
    CHECK(f.vq.avail_idx() == 5);
    CHECK(f.q.next_avail() == 5);
    CHECK(f.vq.used_idx() == 5);
    CHECK(f.vq.used(4).len == 65540);
    CHECK(f.q.pop(f.chain) == Pop::Empty);
}

TEST_CASE("virtqueue restore() continues at a given position across the wrap", "[virtio][virtqueue]") {
    Fixture f;
    f.vq.set_avail_idx(0xfffe);
    f.mem.poke(f.vq.layout().used + 2, "\xfe\xff", 2);
    f.q.restore({0xfffe, 0xfffe});
    auto buf = f.vq.writable(4);
    for (int i = 0; i < 4; ++i) f.vq.add({buf});  // avail idx 0xfffe -> 0x0002
    CHECK(f.q.pending() == 4);
    for (int i = 0; i < 4; ++i) {
        REQUIRE(f.q.pop(f.chain) == Pop::Chain);
        f.q.add_used(f.chain.head(), std::uint32_t(i));
    }
    f.q.publish_used();
    CHECK(f.q.pop(f.chain) == Pop::Empty);
    CHECK(f.vq.used_idx() == 2);
    CHECK(f.q.position().next_avail == 2);
    CHECK(f.vq.used(0xffff).len == 1);  // slot (0xffff % 8) = 7
    CHECK(f.vq.used(0).len == 2);
}

TEST_CASE("virtqueue interrupt suppression", "[virtio][virtqueue]") {
    SECTION("without event idx: VIRTQ_AVAIL_F_NO_INTERRUPT") {
        Fixture f(false);
        f.q.add_used(0, 0);
        f.q.publish_used();
        CHECK(f.q.should_interrupt());
        f.vq.set_avail_flags(xover::virtio_net::spec::kAvailNoInterrupt);
        CHECK_FALSE(f.q.should_interrupt());
    }
    SECTION("with event idx: used_event, including across wrap") {
        Fixture f(true);
        auto buf = f.vq.writable(4);
        auto complete = [&](int n) {
            for (int i = 0; i < n; ++i) {
                f.vq.add({buf});
                REQUIRE(f.q.pop(f.chain) == Pop::Chain);
                f.q.add_used(f.chain.head(), 0);
            }
            f.q.publish_used();
        };
        complete(1);
        CHECK(f.q.should_interrupt());  // first time: always
        f.vq.set_used_event(3);         // "interrupt me when used idx passes 3"
        complete(2);                    // used 1 -> 3
        CHECK_FALSE(f.q.should_interrupt());
        complete(1);                    // used 3 -> 4 crosses 3
        CHECK(f.q.should_interrupt());
        complete(1);
        CHECK_FALSE(f.q.should_interrupt());  // event 3 already behind
        // Drive used idx to 0xfffe, then ask for 0x0000 and cross the wrap.
        for (std::uint16_t used = f.q.used_index(); used != 0xfffe; used = f.q.used_index()) complete(1);
        f.q.should_interrupt();
        f.vq.set_used_event(0x0000);
        complete(1);  // -> 0xffff
        CHECK_FALSE(f.q.should_interrupt());
        complete(2);  // -> 0x0001, crossed 0x0000
        CHECK(f.q.should_interrupt());
    }
}

TEST_CASE("virtqueue notification re-arming", "[virtio][virtqueue]") {
    SECTION("event idx: avail_event = next avail") {
        Fixture f(true);
        f.vq.add({f.vq.writable(1)});
        REQUIRE(f.q.pop(f.chain) == Pop::Chain);
        CHECK_FALSE(f.q.enable_notifications());
        CHECK(f.vq.avail_event() == 1);
        f.vq.add({f.vq.writable(1)});
        CHECK(f.q.enable_notifications());  // arrived meanwhile: look again
    }
    SECTION("no event idx: VIRTQ_USED_F_NO_NOTIFY") {
        Fixture f(false);
        f.q.disable_notifications();
        CHECK(f.vq.used_flags() == xover::virtio_net::spec::kUsedNoNotify);
        CHECK_FALSE(f.q.enable_notifications());
        CHECK(f.vq.used_flags() == 0);
    }
}

TEST_CASE("virtqueue reports malformed rings without touching outside memory", "[virtio][virtqueue][hostile]") {
    Fixture f(false, true);
    using xover::virtio_net::spec::kDescIndirect;
    using xover::virtio_net::spec::kDescNext;
    RingError expected = RingError::None;
    SECTION("avail idx jumps by more than the queue size") {
        f.vq.set_avail_idx(9);
        expected = RingError::AvailIndexJump;
    }
    SECTION("head out of range") {
        f.vq.publish(8);
        expected = RingError::HeadOutOfRange;
    }
    SECTION("next out of range") {
        auto b = f.vq.writable(4);
        f.vq.write_desc(0, b.addr, 4, kDescNext, 200);
        f.vq.publish(0);
        expected = RingError::NextOutOfRange;
    }
    SECTION("descriptor loop") {
        auto b = f.vq.writable(4);
        f.vq.write_desc(0, b.addr, 4, kDescNext, 1);
        f.vq.write_desc(1, b.addr, 4, kDescNext, 0);
        f.vq.publish(0);
        expected = RingError::ChainTooLong;
    }
    SECTION("self loop") {
        auto b = f.vq.writable(4);
        f.vq.write_desc(3, b.addr, 4, kDescNext, 3);
        f.vq.publish(3);
        expected = RingError::ChainTooLong;
    }
    SECTION("buffer outside guest memory") {
        f.vq.add({{(1 << 20) - 2, 4, false}});
        expected = RingError::AddressOutOfRange;
    }
    SECTION("buffer address wraps around 2^64") {
        f.vq.add({{~0ull - 1, 16, true}});
        expected = RingError::AddressOutOfRange;
    }
    SECTION("indirect table length not a multiple of 16") {
        auto t = f.vq.alloc(32);
        f.vq.write_desc(0, t, 20, kDescIndirect, 0);
        f.vq.publish(0);
        expected = RingError::IndirectBadLength;
    }
    SECTION("indirect table of length 0") {
        f.vq.write_desc(0, f.vq.alloc(16), 0, kDescIndirect, 0);
        f.vq.publish(0);
        expected = RingError::IndirectBadLength;
    }
    SECTION("indirect table outside memory") {
        f.vq.write_desc(0, (1 << 20) - 16, 32, kDescIndirect, 0);
        f.vq.publish(0);
        expected = RingError::AddressOutOfRange;
    }
    SECTION("nested indirect") {
        auto t = f.vq.alloc(16);
        f.vq.write_desc_at(t, f.vq.alloc(16), 16, kDescIndirect, 0);
        f.vq.write_desc(0, t, 16, kDescIndirect, 0);
        f.vq.publish(0);
        expected = RingError::NestedIndirect;
    }
    SECTION("indirect with next") {
        auto t = f.vq.alloc(16);
        f.vq.write_desc_at(t, f.vq.alloc(4), 4, 0, 0);
        f.vq.write_desc(0, t, 16, kDescIndirect | kDescNext, 1);
        f.vq.publish(0);
        expected = RingError::IndirectWithNext;
    }
    SECTION("loop inside an indirect table") {
        auto t = f.vq.alloc(32);
        auto b = f.vq.alloc(4);
        f.vq.write_desc_at(t, b, 4, kDescNext, 1);
        f.vq.write_desc_at(t + 16, b, 4, kDescNext, 0);
        f.vq.write_desc(0, t, 32, kDescIndirect, 0);
        f.vq.publish(0);
        expected = RingError::ChainTooLong;
    }
    SECTION("indirect next beyond the table") {
        auto t = f.vq.alloc(16);
        f.vq.write_desc_at(t, f.vq.alloc(4), 4, kDescNext, 1);
        f.vq.write_desc(0, t, 16, kDescIndirect, 0);
        f.vq.publish(0);
        expected = RingError::NextOutOfRange;
    }
    REQUIRE(f.q.pop(f.chain) == Pop::Broken);
    CHECK(f.q.error() == expected);
    CHECK(f.q.pop(f.chain) == Pop::Broken);  // stays broken until reset
}

TEST_CASE("virtqueue refuses indirect descriptors unless negotiated", "[virtio][virtqueue][hostile]") {
    Fixture f(false, false);
    f.vq.add_indirect({f.vq.readable("x")});
    REQUIRE(f.q.pop(f.chain) == Pop::Broken);
    CHECK(f.q.error() == RingError::IndirectNotNegotiated);
}

TEST_CASE("virtqueue accepts a chain using every descriptor", "[virtio][virtqueue]") {
    Fixture f;
    auto b = f.vq.readable("z");
    f.vq.add({b, b, b, b, b, b, b, b});
    REQUIRE(f.q.pop(f.chain) == Pop::Chain);
    CHECK(f.chain.segments().size() == 8);
}

TEST_CASE("virtqueue takes a published RX position only within what the guest made available",
          "[virtio][virtqueue][hostile]") {
    Fixture f;
    f.vq.set_avail_idx(3);  // three buffers offered
    CHECK(f.q.resume_at_published(2));  // a producer used two
    CHECK(f.q.position().next_avail == 2);
    CHECK(f.q.resume_at_published(3));
    CHECK_FALSE(f.q.resume_at_published(4));       // past the avail index: no producer got there
    CHECK_FALSE(f.q.resume_at_published(0x8003));  // garbage
    CHECK(f.q.position().next_avail == 3);          // ours is kept
    // Producers moved far past our stale position: theirs is taken as long
    // as it is within one ring (8 buffers) of the avail index.
    f.vq.set_avail_idx(0x2000);
    CHECK_FALSE(f.q.resume_at_published(5));
    CHECK(f.q.resume_at_published(0x2000 - 8));
    CHECK(f.q.position().next_avail == 0x2000 - 8);
}
