// Guest RAM: one memfd (size sealed), mapped MAP_SHARED once, cut into
// regions around the 32-bit MMIO hole. The memfd is exposed so the
// crossover can hand it to a peer process (copy mode maps the peer's RAM).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::vmm {

class RamMemory final : public GuestMemory {
public:
    // One contiguous piece of guest RAM: guest-physical [gpa, gpa + size)
    // is memfd bytes [offset, offset + size) and host bytes host[0, size).
    struct Region {
        std::uint64_t gpa;
        std::uint64_t size;
        std::uint64_t offset;  // into the memfd
        std::uint8_t* host;
    };

    // `bytes` of RAM; below-3GiB part at 0, the rest from 4 GiB (layout.hpp).
    // Throws xover::Error if the memfd or mapping cannot be made.
    explicit RamMemory(std::uint64_t bytes);
    ~RamMemory() override;
    RamMemory(const RamMemory&) = delete;
    RamMemory& operator=(const RamMemory&) = delete;

    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) override;
    std::optional<RamFile> ram_file() const override { return RamFile{memfd_.get(), size_}; }

    // Extra guest-physical ranges backed by host memory outside the RAM
    // memfd (a NIC's crossover DMA window, placed by the PCI bus). `host`
    // must stay mapped, at least `size` bytes, until remove_region(). The
    // backing behind `host` may be swapped (MAP_FIXED) while the vCPUs are
    // paused; readers need no lock (fixed table, atomic fields). Returns a
    // handle; throws xover::Error when the table is full.
    unsigned add_region(std::uint64_t gpa, std::uint64_t size, std::uint8_t* host);
    void remove_region(unsigned handle);

    std::uint64_t size() const { return size_; }
    int memfd() const { return memfd_.get(); }
    std::uint8_t* host_base() const { return base_; }  // memfd offset 0
    const std::vector<Region>& regions() const { return regions_; }

private:
    kvm::UniqueFd memfd_;
    std::uint64_t size_ = 0;
    std::uint8_t* base_ = nullptr;
    std::vector<Region> regions_;

    struct Extra {
        std::atomic<std::uint64_t> gpa{0};
        std::atomic<std::uint64_t> size{0};  // 0: free
        std::atomic<std::uint8_t*> host{nullptr};
        std::atomic<bool> used{false};
    };
    static constexpr unsigned kMaxExtra = 8;
    std::array<Extra, kMaxExtra> extra_;
};

}  // namespace xover::vmm
