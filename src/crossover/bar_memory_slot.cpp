#include "xover/crossover/bar_memory_slot.hpp"

namespace xover::crossover {

void BarMemorySlot::place(std::uint64_t gpa) {
    if (gpa == this->gpa()) return;
    if (this->gpa()) {
        if (region_ >= 0) memory_.remove_region(unsigned(region_));
        region_ = -1;
        vm_.delete_memory_region(slot_);
        gpa_.store(0, std::memory_order_release);
    }
    if (!gpa) return;
    vm_.set_memory_region(slot_, gpa, size_, host_);
    try {
        region_ = int(memory_.add_region(gpa, size_, host_));
    } catch (...) {
        vm_.delete_memory_region(slot_);
        throw;
    }
    gpa_.store(gpa, std::memory_order_release);
}

void BarMemorySlot::recreate_slot() {
    std::uint64_t g = gpa();
    if (!g) return;
    vm_.delete_memory_region(slot_);
    vm_.set_memory_region(slot_, g, size_, host_);
}

}  // namespace xover::crossover
