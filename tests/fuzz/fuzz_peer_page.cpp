// Fuzz target: a crossover peer's shared page (nic/shared_nic_state.hpp and
// the TX handoff after it) as the queue views read it from another process.
// The pages start as their owners set them up; then the input overwrites
// any of their words — ring descriptions, positions, ledgers, loans,
// parked records, a posted RX change — as a hostile or broken peer could.
// Each model's RX and TX views (picked as the engine picks them,
// crossover/model_views.cpp) then run their whole protocol over guest
// memory the input also fills.
// Every value read from a page must be bounded before use: the views must
// stay inside guest memory and the pages, and terminate.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "fake_guest_memory.hpp"
#include "fuzz_shared_page.hpp"
#include "xover/crossover/model_views.hpp"

using namespace xover;

namespace {

constexpr std::size_t kMemoryBytes = 64 << 10;

// A 4 GiB guest whose RAM repeats the input's 64 KiB: any address a page
// names is inside guest memory, so only the views' own bounds (not the end
// of a small fake memory) can stop a walk that a page's value makes long.
struct AliasedGuestMemory : vmm::GuestMemory {
    static constexpr std::uint64_t kGuestBytes = 4ull << 30;
    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) override {
        const std::uint64_t offset = gpa % kMemoryBytes;
        if (len == 0 || gpa >= kGuestBytes || len > kGuestBytes - gpa || len > kMemoryBytes - offset) return {};
        return {backing.bytes.data() + offset, static_cast<std::size_t>(len)};
    }
    FakeGuestMemory backing{kMemoryBytes};
};

nic::ModelId pick_model(FuzzedDataProvider& in) {
    return in.ConsumeBool() ? nic::ModelId::E1000 : nic::ModelId::VirtioNet;
}

// The owner's setup, then the peer's lies: (offset, 32-bit word) pairs
// anywhere in the page and the handoff's control part.
void corrupt(fuzz::SharedPage& page, nic::ModelId model, FuzzedDataProvider& in) {
    page.reset(model);
    nic::SharedNicState& s = page.state();
    s.publish_rx_ring({.kind = model == nic::ModelId::E1000 ? nic::RxRingKind::E1000Legacy : nic::RxRingKind::VirtioSplit,
                       .ring_gpa = 0x100, .avail_gpa = 0x200, .used_gpa = 0x300, .ring_entries = 16,
                       .buffer_size = 2048, .features = nic::kRxMergeable});
    s.link_flags.store(nic::kOwnerRxEnabled | nic::kOwnerLinkUp);
    auto writes = in.ConsumeIntegralInRange<std::size_t>(0, 64);
    for (std::size_t i = 0; i < writes && in.remaining_bytes() > 0; ++i) {
        auto offset = in.ConsumeIntegralInRange<std::size_t>(0, fuzz::SharedPage::kControlBytes - 4) & ~std::size_t(3);
        std::array<std::uint8_t, 4> word;
        for (auto& b : word) b = in.ConsumeIntegral<std::uint8_t>();
        page.overwrite_at(offset, word);
    }
}

void receive_side(nic::ModelId model, vmm::GuestMemory& memory, nic::SharedNicState& receiver,
                  FuzzedDataProvider& in) {
    auto rx = crossover::make_rx_view(model);
    if (rx->begin(memory, receiver) != nic::RxView::Begin::Ready) return;
    std::vector<std::uint8_t> frame(in.ConsumeIntegralInRange<std::size_t>(0, 9018), 0x5a);
    if (frame.size() >= 12) std::memset(frame.data(), 0xff, 6);  // broadcast: the filter's easy case
    auto frames = in.ConsumeIntegralInRange<int>(0, 6);
    for (int i = 0; i < frames; ++i) {
        if (!rx->accepts(frame)) break;
        rx->in_place(frame);
        if (rx->write(frame) == nic::RxView::Status::Full && !rx->arm_space_notification()) break;
    }
    rx->place(in.ConsumeIntegral<std::uint32_t>(), in.ConsumeIntegral<std::uint32_t>(),
              in.ConsumeIntegral<std::uint32_t>());
    rx->position();
    rx->finish();
}

void transmit_side(nic::ModelId model, vmm::GuestMemory& memory, nic::SharedNicState& sender,
                   nic::SharedNicState& receiver, FuzzedDataProvider& in) {
    auto tx = crossover::make_tx_view(model);
    nic::TxHandoff& handoff = nic::tx_handoff(sender);
    // The frames a sender parked, as the receiver's process moves them.
    nic::ParkedFrame parked;
    for (std::uint32_t moved = 0; moved <= nic::kHandoffSlots && nic::peek_parked(handoff, parked); ++moved) {
        std::vector<std::uint8_t> copy(parked.bytes, parked.bytes + parked.length);
        nic::pop_parked(handoff);
    }
    if (tx->begin(memory, handoff)) {
        auto tokens = in.ConsumeIntegralInRange<int>(0, 8);
        for (int i = 0; i < tokens; ++i) tx->complete(in.ConsumeIntegral<std::uint32_t>());
        tx->finish();
        tx->signal_remote(sender);
        tx->tx_route(sender);
    }
    const auto link = in.ConsumeIntegralInRange<std::uint64_t>(0, 3);
    using Completer = nic::TxView::Completer;
    if (tx->window_lent(sender, link)) tx->complete_window(Completer::Receiver, memory, sender, &memory, &receiver);
    tx->window_lend(sender, link, in.ConsumeIntegral<std::uint16_t>(), in.ConsumeIntegral<std::uint16_t>(), memory,
                    receiver);
    tx->complete_window(Completer::Sender, memory, sender, &memory, &receiver);
    tx->complete_window(Completer::Sender, memory, sender, nullptr, nullptr);  // the link gone
    tx->window_holds(sender, in.ConsumeIntegral<std::uint16_t>());
    tx->window_any(sender);
    tx->window_forget(sender);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fuzz::SharedPage receiver_page, sender_page;
    static AliasedGuestMemory memory;
    FuzzedDataProvider in(data, size);
    const nic::ModelId receiver_model = pick_model(in), sender_model = pick_model(in);
    corrupt(receiver_page, receiver_model, in);
    corrupt(sender_page, sender_model, in);
    const auto image = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, kMemoryBytes));
    std::fill(memory.backing.bytes.begin(), memory.backing.bytes.end(), 0);
    std::copy(image.begin(), image.end(), memory.backing.bytes.begin());

    // A producer that takes the receiver's lock first applies the change
    // its owner posted (nic/rx_change.hpp): the posted words are the
    // peer's lies too.
    receiver_page.state().apply_posted_rx_change();
    receive_side(receiver_model, memory, receiver_page.state(), in);
    transmit_side(sender_model, memory, sender_page.state(), receiver_page.state(), in);
    return 0;
}
