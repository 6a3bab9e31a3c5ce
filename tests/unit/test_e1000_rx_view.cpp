// The e1000's RX view (src/e1000/rx_view.cpp) as a producer that dies
// mid-batch leaves it: RDH is published with each frame, so the next
// producer continues after every frame the guest may already see.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "fake_guest_memory.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/nic/rx_view.hpp"

using namespace xover;
using xover::test::FakeGuestMemory;

namespace {

constexpr std::uint64_t kRing = 0x1000;
constexpr std::uint64_t kBuffers = 0x10000;
constexpr std::uint32_t kEntries = 8;
constexpr std::uint32_t kBufferSize = 256;

// An e1000 receiver's legacy RX ring as a producer finds it: every
// descriptor armed with its buffer, RDT one short of a full ring.
struct E1000Receiver {
    FakeGuestMemory mem{1 << 20};
    crossover::SharedStatePage page =
        crossover::SharedStatePage::create("e1000-rx-view", std::uint32_t(nic::ModelId::E1000));

    E1000Receiver() {
        for (std::uint32_t i = 0; i < kEntries; ++i) {
            std::uint64_t buffer = kBuffers + std::uint64_t(i) * kBufferSize;
            mem.poke(kRing + 16ull * i, &buffer, 8);
        }
        nic::RxRing ring;
        ring.kind = nic::RxRingKind::E1000Legacy;
        ring.ring_gpa = kRing;
        ring.ring_entries = kEntries;
        ring.buffer_size = kBufferSize;
        ring.features = nic::kRxStripCrc;
        page.state().publish_rx_ring(ring);
        page.state().publish_rdt(kEntries - 1);
        page.state().link_flags.fetch_or(nic::kOwnerRxEnabled);
    }
    std::uint8_t status(std::uint32_t i) const { return mem.at<std::uint8_t>(kRing + 16ull * i + 12); }
};

std::vector<std::uint8_t> frame_of(std::size_t n) {
    std::vector<std::uint8_t> f(n, 0x5a);
    std::memset(f.data(), 0xff, 6);  // broadcast: no filter published anyway
    return f;
}

}  // namespace

TEST_CASE("e1000 RX view: a producer that dies mid-batch leaves RDH after its last frame", "[e1000][crossover]") {
    E1000Receiver r;
    using St = nic::RxView::Status;
    auto frame = frame_of(60);
    {
        auto dying = e1000::make_rx_view();
        REQUIRE(dying->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
        REQUIRE(dying->write(frame) == St::Written);
        REQUIRE(dying->write(frame) == St::Written);
        // no finish(): its process was killed here
    }
    CHECK(r.page.state().load_rdh() == 2);
    CHECK(r.status(1) & 0x01);  // DD

    auto next = e1000::make_rx_view();
    REQUIRE(next->begin(r.mem, r.page.state()) == nic::RxView::Begin::Ready);
    CHECK(next->position() == 2);
    REQUIRE(next->write(frame) == St::Written);
    next->finish();
    CHECK(r.page.state().load_rdh() == 3);
}
