#include "xover/vhost_user/memory_table.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits>
#include <utility>

#include "xover/vmm/layout.hpp"

namespace xover::vhost_user {

namespace {

// not_shareable_reason() of a table with no regions (the header's default).
constexpr const char* kNoTable = "no memory table";

bool overlaps(std::uint64_t a, std::uint64_t a_size, std::uint64_t b, std::uint64_t b_size) {
    // Ends do not wrap: the constructor checked every region first.
    return a < b + b_size && b < a + a_size;
}

// Offset of [addr, addr + len) inside [start, start + size), if it lies
// entirely inside (written so no sum can overflow).
std::optional<std::uint64_t> offset_inside(std::uint64_t addr, std::uint64_t len, std::uint64_t start,
                                           std::uint64_t size) {
    if (len == 0 || addr < start) return std::nullopt;
    std::uint64_t offset = addr - start;
    if (offset >= size || len > size - offset) return std::nullopt;
    return offset;
}

struct stat stat_fd(int fd, std::size_t region) {
    struct stat st;
    if (::fstat(fd, &st) != 0) throw system_error(fmt::format("SET_MEM_TABLE: region {}: fstat", region));
    return st;
}

void check_region(std::size_t i, const MemoryRegion& r, const kvm::UniqueFd& fd) {
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    if (!fd) throw ProtocolError("SET_MEM_TABLE: region {} has no fd", i);
    if (r.memory_size == 0) throw ProtocolError("SET_MEM_TABLE: region {} is empty", i);
    if (r.guest_phys_addr > kMax - r.memory_size || r.userspace_addr > kMax - r.memory_size ||
        r.mmap_offset > kMax - r.memory_size)
        throw ProtocolError("SET_MEM_TABLE: region {} wraps around the address space", i);
    if (r.memory_size > std::numeric_limits<std::size_t>::max())
        throw ProtocolError("SET_MEM_TABLE: region {} is too large to map", i);
    static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    if (r.mmap_offset % page != 0)
        throw ProtocolError("SET_MEM_TABLE: region {}: mmap offset {:#x} is not page-aligned", i, r.mmap_offset);
    // A mapping past the file's end would SIGBUS on first touch, long after
    // this message: refuse it now.
    struct stat st = stat_fd(fd.get(), i);
    if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) < r.mmap_offset + r.memory_size)
        throw ProtocolError("SET_MEM_TABLE: region {}: offset+size beyond the file's size ({:#x} + {:#x} > {:#x})",
                            i, r.mmap_offset, r.memory_size, static_cast<std::uint64_t>(st.st_size));
}

void check_no_overlaps(std::span<const MemoryRegion> regions) {
    for (std::size_t i = 0; i < regions.size(); ++i) {
        for (std::size_t j = i + 1; j < regions.size(); ++j) {
            const MemoryRegion& a = regions[i];
            const MemoryRegion& b = regions[j];
            if (overlaps(a.guest_phys_addr, a.memory_size, b.guest_phys_addr, b.memory_size))
                throw ProtocolError("SET_MEM_TABLE: regions {} and {} overlap in guest-physical addresses", i, j);
            if (overlaps(a.userspace_addr, a.memory_size, b.userspace_addr, b.memory_size))
                throw ProtocolError("SET_MEM_TABLE: regions {} and {} overlap in front-end addresses", i, j);
        }
    }
}

}  // namespace

MemoryTable::MemoryTable(std::span<const MemoryRegion> regions, std::vector<kvm::UniqueFd> fds) {
    if (regions.size() > kMaxMemoryRegions)
        throw ProtocolError("SET_MEM_TABLE: {} regions, at most {}", regions.size(), kMaxMemoryRegions);
    if (fds.size() != regions.size())
        throw ProtocolError("SET_MEM_TABLE: {} regions but {} fds", regions.size(), fds.size());
    // Every check before the first mmap: a refused table maps nothing.
    for (std::size_t i = 0; i < regions.size(); ++i) check_region(i, regions[i], fds[i]);
    check_no_overlaps(regions);
    regions_.reserve(regions.size());
    try {
        for (std::size_t i = 0; i < regions.size(); ++i) {
            const MemoryRegion& r = regions[i];
            void* host = ::mmap(nullptr, r.memory_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i].get(),
                                static_cast<off_t>(r.mmap_offset));
            if (host == MAP_FAILED) throw system_error(fmt::format("SET_MEM_TABLE: region {}: mmap", i));
            regions_.push_back(Mapped{r, static_cast<std::uint8_t*>(host), std::move(fds[i])});
        }
    } catch (...) {
        unmap();
        throw;
    }
    check_shareable();
}

MemoryTable::~MemoryTable() { unmap(); }

MemoryTable::MemoryTable(MemoryTable&& other) noexcept
    : regions_(std::exchange(other.regions_, {})),
      ram_fd_(std::exchange(other.ram_fd_, -1)),
      ram_size_(std::exchange(other.ram_size_, 0)),
      not_shareable_(std::exchange(other.not_shareable_, kNoTable)) {}

MemoryTable& MemoryTable::operator=(MemoryTable&& other) noexcept {
    if (this != &other) {
        unmap();
        regions_ = std::exchange(other.regions_, {});
        ram_fd_ = std::exchange(other.ram_fd_, -1);
        ram_size_ = std::exchange(other.ram_size_, 0);
        not_shareable_ = std::exchange(other.not_shareable_, kNoTable);
    }
    return *this;
}

void MemoryTable::unmap() {
    for (Mapped& m : regions_) ::munmap(m.host, m.region.memory_size);
    regions_.clear();  // closes the fds
    ram_fd_ = -1;
    ram_size_ = 0;
    not_shareable_ = kNoTable;
}

std::span<std::uint8_t> MemoryTable::span(std::uint64_t gpa, std::uint64_t len) {
    for (Mapped& m : regions_) {
        if (auto offset = offset_inside(gpa, len, m.region.guest_phys_addr, m.region.memory_size))
            return {m.host + *offset, static_cast<std::size_t>(len)};
    }
    return {};
}

std::optional<vmm::RamFile> MemoryTable::ram_file() const {
    if (ram_fd_ < 0) return std::nullopt;
    return vmm::RamFile{ram_fd_, ram_size_};
}

std::optional<std::uint64_t> MemoryTable::to_guest_physical(std::uint64_t uva, std::uint64_t len) const {
    for (const Mapped& m : regions_) {
        if (auto offset = offset_inside(uva, len, m.region.userspace_addr, m.region.memory_size))
            return m.region.guest_phys_addr + *offset;
    }
    return std::nullopt;
}

void MemoryTable::check_shareable() {
    auto refuse = [this](std::string reason) { not_shareable_ = std::move(reason); };
    if (regions_.empty()) return refuse(kNoTable);
    struct stat first = stat_fd(regions_.front().fd.get(), 0);
    for (std::size_t i = 1; i < regions_.size(); ++i) {
        struct stat st = stat_fd(regions_[i].fd.get(), i);
        if (st.st_dev != first.st_dev || st.st_ino != first.st_ino)
            return refuse(fmt::format("the front-end's memory regions 0 and {} are different files", i));
    }
    // A peer maps the whole file: were it shrinkable, the front-end could
    // truncate it under the peer's mapping and make it SIGBUS.
    int seals = ::fcntl(regions_.front().fd.get(), F_GET_SEALS);
    if (seals < 0) return refuse("the front-end's memory is not a sealable memfd");
    if (!(seals & F_SEAL_SHRINK)) return refuse("the front-end's memfd is not sealed against shrinking");
    for (std::size_t i = 0; i < regions_.size(); ++i) {
        const MemoryRegion& r = regions_[i].region;
        std::optional<std::uint64_t> want = vmm::layout::ram_file_offset(r.guest_phys_addr, r.memory_size);
        if (!vmm::layout::ram_file_offset(r.guest_phys_addr))
            return refuse(fmt::format("region {} starts at guest address {:#x}, between 3 and 4 GiB", i,
                                      r.guest_phys_addr));
        if (!want)
            return refuse(fmt::format("region {} (guest address {:#x}, size {:#x}) crosses 3 GiB", i,
                                      r.guest_phys_addr, r.memory_size));
        if (r.mmap_offset != *want)
            return refuse(fmt::format("region {} (guest address {:#x}) is at file offset {:#x}, not {:#x}", i,
                                      r.guest_phys_addr, r.mmap_offset, *want));
    }
    ram_fd_ = regions_.front().fd.get();
    ram_size_ = static_cast<std::uint64_t>(first.st_size);
    not_shareable_.clear();
}

}  // namespace xover::vhost_user
