// Private to src/devices: one device register whose guest writes may be
// posted (vmm/posted_writes.hpp) once the model has learned that the
// driver flushes them (e1000 RDT, virtio-net's RX notify). It follows the
// register's BAR wherever the guest maps it, and tells the model when the
// watchdog found a posted write that waited for a flush in vain.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "xover/vmm/pci_device.hpp"
#include "xover/vmm/posted_writes.hpp"

namespace xover::devices {

class PostedRegister {
public:
    // `went_stale` runs on the I/O thread with no lock held.
    PostedRegister(vmm::PostedWrites& posted_writes, const vmm::PciDevice& device, unsigned bar,
                   std::uint64_t offset, std::function<void()> went_stale);
    ~PostedRegister();
    PostedRegister(const PostedRegister&) = delete;
    PostedRegister& operator=(const PostedRegister&) = delete;

    // The model's decision (called with the device lock held).
    void set_posted(bool posted);
    // The BAR may have moved (PciDevice::bars_mapped).
    void bars_mapped();

private:
    void place_zone();  // mutex_ held
    void zone_went_stale();

    vmm::PostedWrites& posted_writes_;
    const vmm::PciDevice& device_;
    unsigned bar_;
    std::uint64_t offset_;
    std::function<void()> went_stale_;
    std::mutex mutex_;  // after the device lock
    bool posted_ = false;
    vmm::PostedWrites::ZoneId zone_ = 0;
    std::uint64_t zone_at_ = 0;  // guest-physical address of the posted zone; 0: none
};

}  // namespace xover::devices
