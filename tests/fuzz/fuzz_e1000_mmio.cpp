// Fuzz target: the e1000 (82540EM) as a hostile guest drives it — any
// sequence of MMIO and I/O-port reads and writes (any offset, width and
// value, registers not masked to sane ranges), the guest rewriting its
// rings and buffers between them, frames arriving from the backend, link
// changes and timer expiries, over guest memory the input fills.
//
// The model must stay inside guest memory, terminate, and turn every bad
// descriptor into a counter (tests/unit/test_e1000_hostile.cpp's rule).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "e1000_ring_builder.hpp"

using namespace xover;
using namespace xover::e1000;

namespace {

constexpr std::size_t kMemoryBytes = 128 << 10;

// The registers that steer DMA and interrupts, picked most of the time so
// the fuzzer reaches the rings; any other offset is still possible.
constexpr std::array<std::uint32_t, 32> kRegisters{
    reg::CTRL,  reg::STATUS, reg::EECD,  reg::EERD,  reg::MDIC,  reg::ICR,   reg::ITR,    reg::ICS,
    reg::IMS,   reg::IMC,    reg::RCTL,  reg::RDBAL, reg::RDBAH, reg::RDLEN, reg::RDH,    reg::RDT,
    reg::RDTR,  reg::RADV,   reg::RXCSUM, reg::MTA,  reg::RAL0,  reg::RAH0,  reg::VFTA,   reg::TCTL,
    reg::TDBAL, reg::TDBAH,  reg::TDLEN, reg::TDH,   reg::TDT,   reg::TIDV,  reg::TADV,   reg::VET};

std::uint32_t pick_offset(FuzzedDataProvider& in) {
    if (in.ConsumeBool()) return kRegisters[in.ConsumeIntegralInRange<std::size_t>(0, kRegisters.size() - 1)];
    return in.ConsumeIntegral<std::uint32_t>();  // anywhere, in or out of the BAR, aligned or not
}

std::span<std::uint8_t> access_width(FuzzedDataProvider& in, std::array<std::uint8_t, 8>& buffer) {
    static constexpr std::size_t kWidths[] = {4, 4, 4, 1, 2, 8};
    return {buffer.data(), kWidths[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kWidths) - 1)]};
}

}  // namespace

// The model's rate-limited warnings about the guest's mistakes are the
// expected output here; printing them would only slow the fuzzer down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto ops = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 1024));
    test::E1000Rig rig(kMemoryBytes);
    rig.use_fake_timer();
    const auto image = in.ConsumeRemainingBytes<std::uint8_t>();
    std::copy_n(image.begin(), std::min(image.size(), kMemoryBytes), rig.memory.bytes.begin());

    vmm::IoDevice& mmio = *rig.nic.bar(E1000::kMmioBar).handler;
    vmm::IoDevice& io = *rig.nic.bar(E1000::kIoBar).handler;
    FuzzedDataProvider op(ops.data(), ops.size());
    std::array<std::uint8_t, 8> buffer{};
    while (op.remaining_bytes() > 0) {
        switch (op.ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1:
        case 2: {  // register write, most often: it is what moves the rings
            std::uint32_t offset = pick_offset(op);
            auto bytes = access_width(op, buffer);
            vmm::store_le(bytes, op.ConsumeIntegral<std::uint64_t>());
            mmio.write(offset, bytes);
            break;
        }
        case 3: {
            std::uint32_t offset = pick_offset(op);
            mmio.read(offset, access_width(op, buffer));
            break;
        }
        case 4: {  // IOADDR/IODATA (I/O BAR)
            auto bytes = access_width(op, buffer);
            vmm::store_le(bytes, op.ConsumeIntegral<std::uint64_t>());
            std::uint64_t port = op.ConsumeIntegralInRange<std::uint64_t>(0, 8);
            if (op.ConsumeBool()) io.write(port, bytes);
            else io.read(port, bytes);
            break;
        }
        case 5: {  // the guest rewrites a descriptor or buffer word
            auto at = op.ConsumeIntegralInRange<std::size_t>(0, kMemoryBytes - 8);
            auto value = op.ConsumeIntegral<std::uint64_t>();
            std::memcpy(rig.memory.bytes.data() + at, &value, 8);
            break;
        }
        case 6: {  // a frame from the backend (broadcast, so the filter passes it)
            auto length = op.ConsumeIntegralInRange<std::size_t>(0, 16384);
            std::vector<std::uint8_t> frame(length, 0xff);
            for (std::size_t i = 12; i < length; ++i) frame[i] = std::uint8_t(i);
            rig.nic.deliver(frame);
            break;
        }
        case 7:
            rig.advance_ns(op.ConsumeIntegralInRange<std::uint64_t>(0, 10'000'000));
            break;
        case 8:
            rig.backend.link = op.ConsumeBool();
            rig.nic.link_changed();
            break;
        case 9:  // the backend refuses the next sends, then takes frames again
            rig.backend.busy_after = op.ConsumeIntegralInRange<int>(-1, 4);
            rig.backend.result = net::Backend::SendResult::Sent;
            rig.nic.resume_tx();
            break;
        }
        rig.backend.sent.clear();  // what was sent does not matter, only that it stayed in bounds
    }
    return 0;
}
