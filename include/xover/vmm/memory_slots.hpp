// The KVM memory slot numbers of one VM, each handed out once: the
// machine's RAM regions take theirs first, then whatever else maps memory
// into the guest (a crossover NIC's DMA window, a slot per half). Nothing
// gives a slot back: what holds one lives as long as the VM. Setup time,
// one thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace xover::vmm {

class MemorySlots {
public:
    // Slots 0 .. limit-1 (KVM_CAP_NR_MEMSLOTS).
    explicit MemorySlots(std::uint32_t limit) : limit_(limit) {}

    // `count` consecutive slots for `what` (named in the error); returns
    // the first. Throws xover::Error when fewer are left.
    std::uint32_t allocate(std::uint32_t count, std::string_view what);

    std::uint32_t used() const { return next_; }
    std::uint32_t limit() const { return limit_; }

private:
    std::uint32_t limit_;
    std::uint32_t next_ = 0;
};

}  // namespace xover::vmm
