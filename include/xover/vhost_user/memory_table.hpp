// The front-end's guest memory as SET_MEM_TABLE describes it: up to
// kMaxMemoryRegions regions, each an fd mapped MAP_SHARED from its
// mmap_offset. It is the back-end's vmm::GuestMemory (guest-physical
// addresses, bounds-checked: a range not entirely inside one region is an
// empty span), and it translates the front-end's virtual addresses (the
// vring addresses of SET_VRING_ADDR) to guest-physical ones.
//
// Crossover peers map a VM's RAM as one memfd laid out as xover lays out
// its own (vmm::layout::ram_file_offset: below 3 GiB memfd offset = GPA, above
// 4 GiB offset = GPA - 1 GiB). QEMU's memory-backend-memfd is laid out
// that way for guests whose RAM below 4 GiB ends at or under 3 GiB, so
// ram_file() offers the front-end's memfd to peers only when every region
// is that one file at that offset; otherwise it says why not.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "xover/kvm/unique_fd.hpp"
#include "xover/vhost_user/messages.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::vhost_user {

class MemoryTable final : public vmm::GuestMemory {
public:
    MemoryTable() = default;
    // Maps every region (taking its fd). Throws ProtocolError for regions
    // that overlap in guest-physical or in front-end virtual addresses,
    // more regions or fds than given, an empty or wrapping region, an
    // mmap_offset that is not page-aligned or whose offset + size is past
    // the file's end (checked with fstat before mmap, so no SIGBUS later),
    // and xover::Error when an fd cannot be mapped (mmap failure). Nothing
    // stays mapped after a throw; the fds are closed.
    MemoryTable(std::span<const MemoryRegion> regions, std::vector<kvm::UniqueFd> fds);
    ~MemoryTable() override;
    MemoryTable(MemoryTable&&) noexcept;
    MemoryTable& operator=(MemoryTable&&) noexcept;
    MemoryTable(const MemoryTable&) = delete;
    MemoryTable& operator=(const MemoryTable&) = delete;

    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) override;
    std::optional<vmm::RamFile> ram_file() const override;

    // The guest-physical address of the front-end's virtual address `uva`
    // if [uva, uva + len) lies inside one region; nullopt otherwise (and
    // for len 0, as span() is empty for it).
    std::optional<std::uint64_t> to_guest_physical(std::uint64_t uva, std::uint64_t len) const;

    bool empty() const { return regions_.empty(); }
    std::size_t region_count() const { return regions_.size(); }
    // Why ram_file() is empty ("" when it is not): for the log line that
    // refuses a crossover.
    const std::string& not_shareable_reason() const { return not_shareable_; }

private:
    struct Mapped {
        MemoryRegion region;
        std::uint8_t* host = nullptr;  // the mapping of [mmap_offset, + memory_size)
        kvm::UniqueFd fd;
    };
    void check_shareable();
    void unmap();

    std::vector<Mapped> regions_;
    // ram_file(): the first region's fd and its file's size, when shareable.
    int ram_fd_ = -1;
    std::uint64_t ram_size_ = 0;
    // Never "" without a shareable table (an empty or moved-from table
    // says why too).
    std::string not_shareable_ = "no memory table";
};

}  // namespace xover::vhost_user
