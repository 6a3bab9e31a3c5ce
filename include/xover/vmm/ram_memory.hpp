// Guest RAM: one memfd (size sealed), mapped MAP_SHARED once, cut into
// regions around the 32-bit MMIO hole. The memfd is exposed so the
// crossover can hand it to a peer process (copy mode maps the peer's RAM).
#pragma once

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

    std::uint64_t size() const { return size_; }
    int memfd() const { return memfd_.get(); }
    std::uint8_t* host_base() const { return base_; }  // memfd offset 0
    const std::vector<Region>& regions() const { return regions_; }

private:
    kvm::UniqueFd memfd_;
    std::uint64_t size_ = 0;
    std::uint8_t* base_ = nullptr;
    std::vector<Region> regions_;
};

}  // namespace xover::vmm
