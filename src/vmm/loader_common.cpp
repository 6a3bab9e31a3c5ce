// Helpers every kernel loader needs: reading image files with clear errors,
// bounds-checked copies into guest memory, the memory map, and placement of
// the command line and initrd.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "loader_internal.hpp"
#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::vmm {

std::vector<E820Entry> default_memory_map(std::uint64_t memory_bytes) {
    std::vector<E820Entry> map;
    const std::uint64_t below = layout::ram_below_hole(memory_bytes);
    const std::uint64_t above = layout::ram_above_hole(memory_bytes);
    map.push_back({0, std::min(below, layout::kLowRamEnd), E820Entry::kRam});
    if (below > layout::kEbdaAddr)
        map.push_back({layout::kEbdaAddr, layout::kHighRamStart - layout::kEbdaAddr, E820Entry::kReserved});
    if (below > layout::kHighRamStart)
        map.push_back({layout::kHighRamStart, below - layout::kHighRamStart, E820Entry::kRam});
    if (above > 0) map.push_back({layout::kMmioHoleEnd, above, E820Entry::kRam});
    return map;
}

namespace loader_detail {

namespace {

// Owns one file descriptor for the duration of a read.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

std::string mib(std::uint64_t bytes) {
    if (bytes % (1u << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
    return fmt::format("{:.1f} MiB", double(bytes) / double(1u << 20));
}

std::vector<std::uint8_t> read_image(const std::filesystem::path& path, std::string_view what, std::uint64_t limit) {
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) throw system_error(fmt::format("{} {}: cannot open", what, path.string()));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw system_error(fmt::format("{} {}: cannot stat", what, path.string()));
    if (!S_ISREG(st.st_mode)) throw Error("{} {}: not a regular file", what, path.string());
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size == 0) throw Error("{} {}: file is empty", what, path.string());
    if (size > limit)
        throw Error("{} {} ({}) is larger than guest memory ({})", what, path.string(), mib(size), mib(limit));

    std::vector<std::uint8_t> data(size);
    std::uint64_t done = 0;
    while (done < size) {
        ssize_t n = ::read(fd.get(), data.data() + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw system_error(fmt::format("{} {}: read failed", what, path.string()));
        if (n == 0) throw Error("{} {}: file shrank while reading", what, path.string());
        done += static_cast<std::uint64_t>(n);
    }
    return data;
}

void write_guest(GuestMemory& memory, std::uint64_t gpa, std::span<const std::uint8_t> data, std::string_view what) {
    if (data.empty()) return;
    auto dst = memory.span(gpa, data.size());
    if (dst.empty())
        throw Error("{} at {:#x}..{:#x} does not fit in guest memory", what, gpa, gpa + data.size());
    std::copy(data.begin(), data.end(), dst.begin());
}

void zero_guest(GuestMemory& memory, std::uint64_t gpa, std::uint64_t len, std::string_view what) {
    if (len == 0) return;
    auto dst = memory.span(gpa, len);
    if (dst.empty()) throw Error("{} at {:#x}..{:#x} does not fit in guest memory", what, gpa, gpa + len);
    std::fill(dst.begin(), dst.end(), 0);
}

std::vector<E820Entry> effective_memory_map(const LoadRequest& request) {
    if (!request.memory_map.empty()) return request.memory_map;
    return default_memory_map(request.memory_bytes);
}

bool inside_ram(const std::vector<E820Entry>& map, std::uint64_t addr, std::uint64_t size) {
    if (addr + size < addr) return false;
    return std::any_of(map.begin(), map.end(), [&](const E820Entry& e) {
        return e.type == E820Entry::kRam && addr >= e.addr && addr + size <= e.addr + e.size;
    });
}

std::uint64_t ram_top_below(const std::vector<E820Entry>& map, std::uint64_t limit) {
    std::uint64_t top = 0;
    for (const auto& e : map) {
        if (e.type != E820Entry::kRam || e.addr >= limit) continue;
        top = std::max(top, std::min(e.addr + e.size, limit));
    }
    return top;
}

std::uint64_t place_cmdline(GuestMemory& memory, const LoadRequest& request, std::uint64_t max_len) {
    const std::uint64_t limit = std::min<std::uint64_t>(max_len, layout::kCmdlineMax - 1);
    if (request.cmdline.size() > limit)
        throw Error("kernel command line is {} bytes; {} accepts at most {}", request.cmdline.size(),
                    request.kernel.string(), limit);
    std::vector<std::uint8_t> bytes(request.cmdline.begin(), request.cmdline.end());
    bytes.push_back(0);
    write_guest(memory, layout::kCmdlineAddr, bytes, "kernel command line");
    return layout::kCmdlineAddr;
}

PlacedInitrd place_initrd(GuestMemory& memory, const LoadRequest& request, const std::vector<E820Entry>& map,
                          std::uint64_t kernel_end, std::uint64_t limit) {
    if (!request.initrd) return {};
    const auto& path = *request.initrd;
    auto data = read_image(path, "initrd", request.memory_bytes);
    const std::uint64_t size = data.size();
    const std::uint64_t floor = align_up(std::max(kernel_end, layout::kHighRamStart), 4096);

    // Highest fit wins: scan RAM ranges from the top down.
    std::vector<E820Entry> ram;
    std::copy_if(map.begin(), map.end(), std::back_inserter(ram),
                 [](const E820Entry& e) { return e.type == E820Entry::kRam; });
    std::sort(ram.begin(), ram.end(), [](const E820Entry& a, const E820Entry& b) { return a.addr > b.addr; });
    for (const auto& e : ram) {
        const std::uint64_t end = std::min(e.addr + e.size, limit);
        const std::uint64_t start = std::max(e.addr, floor);
        if (end <= start || end - start < size) continue;
        const std::uint64_t addr = align_down(end - size, 4096);
        if (addr < start) continue;
        write_guest(memory, addr, data, fmt::format("initrd {}", path.string()));
        return {addr, size};
    }
    throw Error("initrd {} ({}) does not fit in guest memory between the kernel end {:#x} and {:#x}", path.string(),
                mib(size), floor, limit);
}

}  // namespace loader_detail
}  // namespace xover::vmm
