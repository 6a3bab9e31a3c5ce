#include "xover/vmm/memory_slots.hpp"

#include "xover/error.hpp"

namespace xover::vmm {

std::uint32_t MemorySlots::allocate(std::uint32_t count, std::string_view what) {
    if (count > limit_ - next_)
        throw Error("{}: no KVM memory slots left ({} needed, {} of {} free)", what, count, limit_ - next_, limit_);
    std::uint32_t first = next_;
    next_ += count;
    return first;
}

}  // namespace xover::vmm
