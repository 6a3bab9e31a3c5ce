#include "xover/kvm/coalesced_mmio.hpp"

#include "xover/error.hpp"

namespace xover::kvm {

// The kernel's struct kvm_coalesced_mmio_ring ends in a flexible array
// that C++ lays out differently (see flex_abi.hpp), so the layout is
// spelled out: an 8-byte header, then 24-byte entries.
static_assert(sizeof(kvm_coalesced_mmio) == 24);

CoalescedMmioRing::CoalescedMmioRing(void* page, std::size_t page_size)
    : header_(static_cast<Header*>(page)),
      entries_(reinterpret_cast<const kvm_coalesced_mmio*>(static_cast<std::uint8_t*>(page) + sizeof(Header))),
      capacity_(std::uint32_t((page_size - sizeof(Header)) / sizeof(kvm_coalesced_mmio))) {
    static_assert(sizeof(Header) == 8);
    if (capacity_ < 2) throw Error("coalesced MMIO ring: a {}-byte page holds no ring", page_size);
}

bool CoalescedMmioRing::empty() const {
    return std::atomic_ref(header_->first).load(std::memory_order_relaxed) == load_last();
}

// The kernel fills the entry, then advances `last` after a write barrier.
std::uint32_t CoalescedMmioRing::load_last() const {
    return std::atomic_ref(header_->last).load(std::memory_order_acquire);
}

// The entry is read before the kernel may reuse its slot.
void CoalescedMmioRing::store_first(std::uint32_t first) {
    std::atomic_ref(header_->first).store(first, std::memory_order_release);
}

}  // namespace xover::kvm
