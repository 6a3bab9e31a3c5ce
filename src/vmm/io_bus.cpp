#include "xover/vmm/io_bus.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "xover/error.hpp"

namespace xover::vmm {

namespace {
// Bounds the log-once set so a guest scanning the address space cannot
// grow it without limit.
constexpr std::size_t kMaxLoggedAddresses = 256;
}  // namespace

IoBus::DeviceCounters* IoBus::counters_for_locked(const std::string& name) {
    auto& slot = counters_[name];
    if (!slot) {
        slot = std::make_unique<DeviceCounters>();
        slot->name = name;
    }
    return slot.get();
}

bool IoBus::try_insert(std::uint64_t base, std::uint64_t size, IoDevice& device, const std::string& name) noexcept {
    if (size == 0 || base + size < base) return false;
    std::unique_lock lock(mutex_);
    // The first range starting at or after base must start at or after the
    // end; the one before must end at or before base.
    auto next = ranges_.lower_bound(base);
    if (next != ranges_.end() && next->first < base + size) return false;
    if (next != ranges_.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second.size > base) return false;
    }
    try {
        ranges_.emplace(base, Range{size, &device, counters_for_locked(name)});
    } catch (...) {
        return false;
    }
    return true;
}

void IoBus::insert(std::uint64_t base, std::uint64_t size, IoDevice& device, const std::string& name) {
    if (!try_insert(base, size, device, name))
        throw Error("{} bus: cannot map {} at {:#x}+{:#x}: empty, wrapping or overlapping another device", name_,
                    name, base, size);
}

bool IoBus::remove(std::uint64_t base) noexcept {
    std::unique_lock lock(mutex_);
    return ranges_.erase(base) > 0;
}

bool IoBus::lookup(std::uint64_t address, Range& range, std::uint64_t& offset) const {
    std::shared_lock lock(mutex_);
    auto it = ranges_.upper_bound(address);
    if (it == ranges_.begin()) return false;
    --it;
    if (address - it->first >= it->second.size) return false;
    range = it->second;
    offset = address - it->first;
    return true;
}

void IoBus::note_unclaimed(std::uint64_t address, std::size_t width, bool is_write) noexcept {
    unclaimed_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(logged_mutex_);
    if (logged_.size() >= kMaxLoggedAddresses || logged_.count(address)) return;
    try {
        logged_.insert(address);
    } catch (...) {
        return;
    }
    spdlog::info("{} bus: unclaimed {}-byte {} at {:#x} (logged once)", name_, width, is_write ? "write" : "read",
                 address);
}

bool IoBus::read(std::uint64_t address, std::span<std::uint8_t> data) noexcept {
    Range range{};
    std::uint64_t offset = 0;
    if (!lookup(address, range, offset)) {
        std::fill(data.begin(), data.end(), std::uint8_t(0xff));
        note_unclaimed(address, data.size(), false);
        return false;
    }
    range.counters->reads.fetch_add(1, std::memory_order_relaxed);
    try {
        range.device->read(offset, data);
    } catch (const std::exception& e) {  // a device bug must not kill the vCPU thread
        spdlog::error("{} bus: {} read at {:#x} failed: {}", name_, range.counters->name, address, e.what());
    }
    return true;
}

bool IoBus::write(std::uint64_t address, std::span<const std::uint8_t> data) noexcept {
    Range range{};
    std::uint64_t offset = 0;
    if (!lookup(address, range, offset)) {
        note_unclaimed(address, data.size(), true);
        return false;
    }
    range.counters->writes.fetch_add(1, std::memory_order_relaxed);
    try {
        range.device->write(offset, data);
    } catch (const std::exception& e) {
        spdlog::error("{} bus: {} write at {:#x} failed: {}", name_, range.counters->name, address, e.what());
    }
    return true;
}

std::vector<const IoBus::DeviceCounters*> IoBus::counters() const {
    std::shared_lock lock(mutex_);
    std::vector<const DeviceCounters*> out;
    for (const auto& [name, c] : counters_) out.push_back(c.get());
    return out;
}

}  // namespace xover::vmm
