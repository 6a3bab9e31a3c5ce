// The shared NIC state page as an ABI (nic/shared_nic_state.hpp): every
// flag set written into it has one bit per flag and no bit twice, and the
// parts sit where the version says. The flag sets are the lists declared
// next to the flags; a new flag goes into its list, and an overlap then
// fails the build (static_assert) and this test.
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <span>
#include <string>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/nic/tx_handoff.hpp"

using namespace xover;

namespace {

// Pairwise, so that a failure names the two flags' positions in the set.
void check_flag_set(const std::string& name, std::span<const std::uint32_t> flags) {
    INFO("flag set " << name);
    for (std::size_t i = 0; i < flags.size(); ++i) {
        INFO("flag " << i << " = 0x" << std::hex << flags[i]);
        CHECK(std::popcount(flags[i]) == 1);
        for (std::size_t j = i + 1; j < flags.size(); ++j) {
            INFO("flag " << j << " = 0x" << std::hex << flags[j]);
            CHECK((flags[i] & flags[j]) == 0);
        }
    }
    CHECK(nic::distinct_bits(flags));
}

}  // namespace

TEST_CASE("shared NIC ABI: no two flags of a set share a bit", "[shared-state]") {
    check_flag_set("LinkFlag (link_flags)", nic::kLinkFlags);
    check_flag_set("RxConfig::features", nic::kRxFeatureFlags);
    check_flag_set("TxQueue::flags", nic::kTxQueueFlags);
    check_flag_set("HandoffRecord::flags", nic::kRecordFlags);
}

TEST_CASE("shared NIC ABI: the overlap check catches what it must", "[shared-state]") {
    constexpr std::uint32_t event_idx = 1u << 0, old_strip_crc = 1u << 0;  // version 5's overlap
    const std::uint32_t overlapping[] = {event_idx, 1u << 1, old_strip_crc};
    CHECK_FALSE(nic::distinct_bits(overlapping));
    const std::uint32_t two_bits[] = {1u << 0, 3u << 1};
    CHECK_FALSE(nic::distinct_bits(two_bits));
    const std::uint32_t none[] = {1u << 0, 0};
    CHECK_FALSE(nic::distinct_bits(none));
    const std::uint32_t fine[] = {1u << 0, 1u << 31};
    CHECK(nic::distinct_bits(fine));
}

TEST_CASE("shared NIC ABI: one common part, the model's part at one offset", "[shared-state]") {
    CHECK(offsetof(nic::SharedNicState, e1000) == nic::kModelPartOffset);
    CHECK(offsetof(nic::SharedNicState, virtio_net) == nic::kModelPartOffset);
    CHECK(offsetof(nic::SharedNicState, window_rx_link) < nic::kModelPartOffset);  // the common part ends before
    CHECK(nic::kModelPartOffset % nic::kCacheLine == 0);
    CHECK(sizeof(nic::SharedNicState) <= nic::kStatePageBytes);
    CHECK(nic::kSharedStateSize >= nic::kStatePageBytes + sizeof(nic::TxHandoff));
}

TEST_CASE("shared NIC ABI: initialize() sets the identity and clears the owner's model part", "[shared-state]") {
    nic::SharedNicState s;
    s.e1000.window_tx.lent.store(0x0000000500000002ull);
    s.e1000.set_filter_word(7, 0xdeadbeef);
    s.initialize(std::uint32_t(nic::ModelId::E1000));
    CHECK(s.valid());
    CHECK(s.version.load() == nic::kSharedStateVersion);
    CHECK(s.model.load() == std::uint32_t(nic::ModelId::E1000));
    CHECK(s.e1000.window_tx.lent.load() == 0);
    CHECK(s.e1000.filter_word(7) == 0);

    nic::SharedNicState v;
    v.virtio_net.peer_irq.pending.store(1);
    v.virtio_net.peer_irq.route.store(nic::PeerInterrupt::Direct);
    v.initialize(std::uint32_t(nic::ModelId::VirtioNet));
    CHECK(v.model.load() == std::uint32_t(nic::ModelId::VirtioNet));
    CHECK_FALSE(v.virtio_net.peer_irq.is_pending());
    CHECK(v.virtio_net.peer_irq.route.load() == nic::PeerInterrupt::Off);

    // Another version's page is refused.
    v.version.store(nic::kSharedStateVersion - 1);
    CHECK_FALSE(v.valid());
}
