// Guest register writes the VMM lets KVM post instead of exiting to
// userspace (coalesced MMIO): doorbells a driver flushes with a later
// access (vmm/flushed_doorbell.hpp). The kernel queues them in the VM's
// coalesced-MMIO ring; every vCPU exit applies them first, in order, so
// the device sees them before the access that exited, as with a posted PCI
// write and the read that flushes it.
//
// A watchdog on the I/O thread keeps posting safe for any driver: a write
// that waited a whole period (kWatchdogPeriod) without an exit is applied
// there, so a posted write is applied within two periods, whatever the
// guest does. If the vCPUs ran meanwhile (their threads' CPU clocks say
// so), the driver has stopped flushing: every zone is withdrawn and its
// owner is told (stale). A vCPU that was merely preempted or halted is not
// held against the driver.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "xover/kvm/coalesced_mmio.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/kvm/vm.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/io_bus.hpp"

namespace xover::vmm {

class PostedWrites {
public:
    static constexpr std::chrono::microseconds kWatchdogPeriod{2000};
    using ZoneId = std::uint64_t;

    PostedWrites(kvm::Vm& vm, IoBus& mmio, EventLoop& loop);
    ~PostedWrites();
    PostedWrites(const PostedWrites&) = delete;
    PostedWrites& operator=(const PostedWrites&) = delete;

    // The VM's ring, once its first vCPU is mapped. Without one (KVM
    // lacks KVM_CAP_COALESCED_MMIO) nothing is ever posted.
    void attach_ring(std::unique_ptr<kvm::CoalescedMmioRing> ring) { ring_ = std::move(ring); }

    // Applies what the guest posted. vCPU threads call it after every
    // exit, before handling it. Thread-safe.
    void apply() noexcept;

    // Posts guest writes to [address, address + size) from now on. `stale`
    // runs on the I/O thread, without locks held, after the watchdog
    // withdrew the zone. Returns 0 when posting is unavailable.
    ZoneId post(std::uint64_t address, std::uint32_t size, std::function<void()> stale);
    // Writes there exit again (what was posted is still applied in order).
    // Withdrawing a zone the watchdog already withdrew is harmless.
    void withdraw(ZoneId zone) noexcept;

    // Each vCPU thread's CPU clock (pthread_getcpuclockid), registered by
    // the thread itself when it starts.
    void add_vcpu_clock(clockid_t clock);

    std::uint64_t applied() const { return applied_.load(std::memory_order_relaxed); }
    std::uint64_t watchdog_applied() const { return watchdog_applied_.load(std::memory_order_relaxed); }
    std::uint64_t stale_events() const { return stale_events_.load(std::memory_order_relaxed); }

private:
    struct Zone {
        std::uint64_t address;
        std::uint32_t size;
        std::function<void()> stale;
    };
    void watchdog_tick();
    void arm_watchdog(bool on);
    void unregister(const Zone& zone) noexcept;
    void withdraw_all_as_stale();
    std::uint64_t vcpu_cpu_ns();

    kvm::Vm& vm_;
    IoBus& mmio_;
    EventLoop& loop_;
    std::unique_ptr<kvm::CoalescedMmioRing> ring_;
    kvm::UniqueFd timer_;
    std::mutex mutex_;  // zones_, next_id_; after any device lock
    std::map<ZoneId, Zone> zones_;
    ZoneId next_id_ = 1;
    std::mutex clocks_mutex_;
    std::vector<clockid_t> vcpu_clocks_;
    // Watchdog state (I/O thread only): whether the ring held writes at
    // the last tick, how many drains had run by then, and the vCPUs' CPU
    // time then.
    bool pending_at_tick_ = false;
    std::uint64_t drains_at_tick_ = 0;
    std::uint64_t cpu_at_tick_ = 0;
    std::atomic<std::uint64_t> applied_{0};
    std::atomic<std::uint64_t> watchdog_applied_{0};
    std::atomic<std::uint64_t> stale_events_{0};
};

}  // namespace xover::vmm
