// Fuzz target: the device side of a split virtqueue over guest memory the
// input writes — the descriptor walk (avail ring, chains, indirect tables),
// RX placement (RxPlacer, mergeable or not) and the virtio-net queue views
// a crossover peer drives (RX placement from a peer, TX completion).
//
// Input: the queue layout (size and ring addresses, 32-bit so they may lie
// outside RAM), feature bits, a start index, a list of operations, then the
// guest memory image. The walker must stay inside guest memory, terminate,
// and report a malformed ring as Broken.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "fake_guest_memory.hpp"
#include "fuzz_shared_page.hpp"
#include "xover/nic/rx_view.hpp"
#include "xover/nic/tx_view.hpp"
#include "xover/virtio_net/rx_placement.hpp"
#include "xover/virtio_net/virtqueue.hpp"

using namespace xover;
using virtio_net::Virtqueue;

namespace {

constexpr std::size_t kMemoryBytes = 64 << 10;
constexpr std::size_t kMaxFrame = 9018;  // a jumbo frame, larger than most buffers

std::vector<std::uint8_t> frame_of(std::size_t length) {
    std::vector<std::uint8_t> frame(length);
    for (std::size_t i = 0; i < length; ++i) frame[i] = std::uint8_t(i * 7 + 1);
    return frame;
}

// The device's own use of the queue: pops, placements, used-ring updates
// and notification changes, interleaved with the guest rewriting memory.
void drive_queue(FakeGuestMemory& memory, const virtio_net::VirtqueueLayout& layout, bool event_idx,
                 bool indirect, bool mergeable, std::uint16_t start, FuzzedDataProvider& ops) {
    Virtqueue queue;
    if (!queue.enable(memory, layout, event_idx, indirect)) return;
    queue.restore({start, start});
    virtio_net::RxPlacer placer;
    virtio_net::DescriptorChain chain;
    bool popped = false;
    while (ops.remaining_bytes() > 0) {
        switch (ops.ConsumeIntegralInRange<int>(0, 6)) {
        case 0:
            popped = queue.pop(chain) == Virtqueue::PopStatus::Chain;
            if (popped) {
                // Every segment must be inside guest memory.
                for (const auto& s : chain.segments())
                    if (!s.bytes.empty()) std::memset(s.bytes.data(), 0, s.device_writable ? s.bytes.size() : 0);
                queue.add_used(chain.head(), std::uint32_t(chain.writable_bytes()));
            }
            break;
        case 1: {
            auto frame = frame_of(ops.ConsumeIntegralInRange<std::size_t>(0, kMaxFrame));
            placer.place(queue, mergeable, frame);
            popped = false;
            break;
        }
        case 2:
            queue.publish_used();
            queue.should_interrupt();
            break;
        case 3:
            if (ops.ConsumeBool()) queue.enable_notifications();
            else queue.disable_notifications();
            break;
        case 4:
            if (popped) queue.unpop();
            popped = false;
            break;
        case 5: {  // the guest writes while the device works
            auto at = ops.ConsumeIntegralInRange<std::size_t>(0, kMemoryBytes - 4);
            auto value = ops.ConsumeIntegral<std::uint32_t>();
            std::memcpy(memory.bytes.data() + at, &value, 4);
            break;
        }
        case 6:
            queue.pending();
            queue.resume_at(ops.ConsumeIntegral<std::uint16_t>());
            popped = false;
            break;
        }
        if (queue.error() != virtio_net::RingError::None) break;  // the device would stop here
    }
}

// The same ring as a crossover peer sees it, through the receiver's page.
void drive_views(FakeGuestMemory& memory, const virtio_net::VirtqueueLayout& layout, std::uint32_t features,
                 std::uint16_t start, std::size_t frames, std::size_t frame_length) {
    static fuzz::SharedPage page;
    page.reset(nic::ModelId::VirtioNet);
    nic::SharedNicState& state = page.state();
    state.publish_rx_ring({.kind = nic::RxRingKind::VirtioSplit, .ring_gpa = layout.desc, .avail_gpa = layout.avail,
                           .used_gpa = layout.used, .ring_entries = layout.size, .features = features});
    state.link_flags.store(nic::kOwnerRxEnabled);
    state.publish_rdh(start);

    auto rx = virtio_net::make_rx_view();
    if (rx->begin(memory, state) == nic::RxView::Begin::Ready) {
        auto frame = frame_of(frame_length);
        for (std::size_t i = 0; i < frames; ++i)
            if (rx->write(frame) == nic::RxView::Status::Full && !rx->arm_space_notification()) break;
        rx->finish();
    }

    nic::TxHandoff& handoff = page.handoff();
    handoff.queue.kind.store(std::uint32_t(nic::TxQueueKind::VirtioSplit));
    handoff.queue.entries.store(layout.size);
    handoff.queue.ring_gpa.store(layout.desc);
    handoff.queue.avail_gpa.store(layout.avail);
    handoff.queue.used_gpa.store(layout.used);
    handoff.queue.flags.store(features & nic::kRxEventIdx ? nic::kTxEventIdx : 0);
    handoff.completion_pos.store(start);
    auto tx = virtio_net::make_tx_view();
    if (tx->begin(memory, handoff)) {
        for (std::size_t i = 0; i < frames; ++i) tx->complete(std::uint32_t(start + i * 3));
        tx->finish();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    virtio_net::VirtqueueLayout layout;
    layout.size = in.ConsumeIntegral<std::uint16_t>();
    layout.desc = in.ConsumeIntegral<std::uint32_t>();
    layout.avail = in.ConsumeIntegral<std::uint32_t>();
    layout.used = in.ConsumeIntegral<std::uint32_t>();
    const auto features = in.ConsumeIntegral<std::uint8_t>();
    const bool event_idx = features & 1, indirect = features & 2, mergeable = features & 4;
    const auto start = in.ConsumeIntegral<std::uint16_t>();
    const auto frames = in.ConsumeIntegralInRange<std::size_t>(0, 8);
    const auto frame_length = in.ConsumeIntegralInRange<std::size_t>(0, kMaxFrame);
    const auto ops = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 256));

    FakeGuestMemory memory(kMemoryBytes);
    const auto image = in.ConsumeRemainingBytes<std::uint8_t>();
    std::copy_n(image.begin(), std::min(image.size(), kMemoryBytes), memory.bytes.begin());
    const auto pristine = memory.bytes;

    FuzzedDataProvider op_stream(ops.data(), ops.size());
    drive_queue(memory, layout, event_idx, indirect, mergeable, start, op_stream);

    memory.bytes = pristine;
    std::uint32_t view_features = (event_idx ? nic::kRxEventIdx : 0) | (indirect ? nic::kRxIndirect : 0) |
                                  (mergeable ? nic::kRxMergeable : 0);
    drive_views(memory, layout, view_features, start, frames, frame_length);
    return 0;
}
