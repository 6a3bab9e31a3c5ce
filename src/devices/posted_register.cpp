#include "posted_register.hpp"

namespace xover::devices {

PostedRegister::PostedRegister(vmm::PostedWrites& posted_writes, const vmm::PciDevice& device, unsigned bar,
                               std::uint64_t offset, std::function<void()> went_stale)
    : posted_writes_(posted_writes), device_(device), bar_(bar), offset_(offset), went_stale_(std::move(went_stale)) {}

PostedRegister::~PostedRegister() {
    std::lock_guard lock(mutex_);
    if (zone_) posted_writes_.withdraw(zone_);
}

void PostedRegister::set_posted(bool posted) {
    std::lock_guard lock(mutex_);
    posted_ = posted;
    place_zone();
}

void PostedRegister::bars_mapped() {
    std::lock_guard lock(mutex_);
    place_zone();
}

void PostedRegister::place_zone() {
    std::uint64_t at = posted_ && device_.bar_decodes(bar_) ? device_.bar_address(bar_) + offset_ : 0;
    if (at == zone_at_) return;
    if (zone_) posted_writes_.withdraw(zone_);
    zone_ = 0;
    zone_at_ = 0;
    if (at == 0) return;
    zone_ = posted_writes_.post(at, 4, [this] { zone_went_stale(); });
    if (zone_) zone_at_ = at;
}

// The watchdog has already withdrawn the zone.
void PostedRegister::zone_went_stale() {
    {
        std::lock_guard lock(mutex_);
        posted_ = false;
        zone_ = 0;
        zone_at_ = 0;
    }
    went_stale_();
}

}  // namespace xover::devices
