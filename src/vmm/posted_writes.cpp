#include "xover/vmm/posted_writes.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <vector>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"

namespace xover::vmm {

PostedWrites::PostedWrites(kvm::Vm& vm, IoBus& mmio, EventLoop& loop) : vm_(vm), mmio_(mmio), loop_(loop) {
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) throw system_error("timerfd_create for the posted-write watchdog");
    timer_.reset(fd);
    loop_.watch(fd, EventLoop::Interest::Readable, [this] {
        std::uint64_t expirations;
        if (::read(timer_.get(), &expirations, sizeof expirations) > 0) watchdog_tick();
    });
}

PostedWrites::~PostedWrites() { loop_.unwatch(timer_.get(), EventLoop::Interest::Readable); }

void PostedWrites::apply() noexcept {
    if (!ring_) return;
    std::size_t n = ring_->drain([this](const kvm::CoalescedMmioRing::Write& w) {
        if (!w.pio) mmio_.write(w.address, w.data);  // only MMIO zones are ever posted
    });
    if (n) applied_.fetch_add(n, std::memory_order_relaxed);
}

PostedWrites::ZoneId PostedWrites::post(std::uint64_t address, std::uint32_t size, std::function<void()> stale) {
    if (!ring_) return 0;
    std::lock_guard lock(mutex_);
    try {
        vm_.register_coalesced(address, size, false);
    } catch (const std::exception& e) {
        spdlog::warn("posted writes: {} (the register keeps exiting)", e.what());
        return 0;
    }
    ZoneId id = next_id_++;
    zones_.emplace(id, Zone{address, size, std::move(stale)});
    if (zones_.size() == 1) arm_watchdog(true);
    return id;
}

void PostedWrites::withdraw(ZoneId id) noexcept {
    std::lock_guard lock(mutex_);
    auto it = zones_.find(id);
    if (it == zones_.end()) return;
    unregister(it->second);
    zones_.erase(it);
    if (zones_.empty()) arm_watchdog(false);
}

void PostedWrites::unregister(const Zone& zone) noexcept {
    try {
        vm_.unregister_coalesced(zone.address, zone.size, false);
    } catch (const std::exception& e) {
        spdlog::warn("posted writes: {}", e.what());
    }
}

// A write still queued at two ticks in a row, with no drain between them,
// has waited at least a period for an exit.
void PostedWrites::watchdog_tick() {
    if (!ring_) return;
    bool pending = !ring_->empty();
    std::uint64_t drains = ring_->drains();
    bool waited = pending && pending_at_tick_ && drains == drains_at_tick_;
    if (!waited) {
        pending_at_tick_ = pending;
        drains_at_tick_ = drains;
        if (pending) cpu_at_tick_ = vcpu_cpu_ns();
        return;
    }
    std::uint64_t ran = vcpu_cpu_ns() - cpu_at_tick_;
    apply();
    watchdog_applied_.fetch_add(1, std::memory_order_relaxed);
    pending_at_tick_ = false;
    // The guest ran for half a period and did not exit: its driver no
    // longer flushes. Otherwise it was not running, and nothing is learned.
    if (ran >= std::uint64_t(std::chrono::nanoseconds(kWatchdogPeriod).count() / 2)) withdraw_all_as_stale();
}

void PostedWrites::withdraw_all_as_stale() {
    std::vector<std::function<void()>> owners;
    {
        std::lock_guard lock(mutex_);
        for (auto& [id, zone] : zones_) {
            unregister(zone);
            owners.push_back(std::move(zone.stale));
        }
        zones_.clear();
        arm_watchdog(false);
    }
    apply();  // anything posted before the zones went
    stale_events_.fetch_add(1, std::memory_order_relaxed);
    for (auto& owner : owners)
        if (owner) owner();
}

void PostedWrites::add_vcpu_clock(clockid_t clock) {
    std::lock_guard lock(clocks_mutex_);
    vcpu_clocks_.push_back(clock);
}

// A clock of a thread that has exited reads as nothing.
std::uint64_t PostedWrites::vcpu_cpu_ns() {
    std::lock_guard lock(clocks_mutex_);
    std::uint64_t total = 0;
    for (clockid_t clock : vcpu_clocks_) {
        timespec ts{};
        if (::clock_gettime(clock, &ts) == 0) total += std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
    }
    return total;
}

void PostedWrites::arm_watchdog(bool on) {
    itimerspec spec{};
    if (on) {
        auto ns = std::chrono::nanoseconds(kWatchdogPeriod).count();
        spec.it_value.tv_nsec = spec.it_interval.tv_nsec = long(ns);
    }
    if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) < 0) spdlog::warn("posted writes: timerfd_settime failed");
}

}  // namespace xover::vmm
