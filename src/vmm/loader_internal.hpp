// Pieces shared by the kernel loaders (loader_*.cpp). Private to src/vmm.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xover/byte_order.hpp"
#include "xover/vmm/guest_memory.hpp"
#include "xover/vmm/loader.hpp"

namespace xover::vmm::loader_detail {

// Reads a whole file. `what` ("kernel", "initrd") starts every error
// message; a file larger than `limit` bytes is refused before reading.
std::vector<std::uint8_t> read_image(const std::filesystem::path& path, std::string_view what, std::uint64_t limit);

// Copies `data` to guest-physical `gpa`; throws (with `what`) when the range
// is not inside guest memory.
void write_guest(GuestMemory& memory, std::uint64_t gpa, std::span<const std::uint8_t> data, std::string_view what);
// Zeroes [gpa, gpa + len) with the same check.
void zero_guest(GuestMemory& memory, std::uint64_t gpa, std::uint64_t len, std::string_view what);

// The request's memory map, or the default one derived from memory_bytes.
std::vector<E820Entry> effective_memory_map(const LoadRequest& request);

// True when [addr, addr + size) lies entirely in one RAM entry of `map`.
bool inside_ram(const std::vector<E820Entry>& map, std::uint64_t addr, std::uint64_t size);

// End of the highest RAM range below `limit` (exclusive); 0 if none.
std::uint64_t ram_top_below(const std::vector<E820Entry>& map, std::uint64_t limit);

// Writes the NUL-terminated command line at layout::kCmdlineAddr and
// returns its GPA. `max_len` is the longest string (without the NUL) the
// kernel accepts.
std::uint64_t place_cmdline(GuestMemory& memory, const LoadRequest& request, std::uint64_t max_len);

struct PlacedInitrd {
    std::uint64_t addr = 0;
    std::uint64_t size = 0;
};
// Reads the initrd (if any) and puts it at the highest page-aligned address
// inside RAM, above `kernel_end` and ending at or below `limit`.
PlacedInitrd place_initrd(GuestMemory& memory, const LoadRequest& request, const std::vector<E820Entry>& map,
                          std::uint64_t kernel_end, std::uint64_t limit);

BootImage load_pvh_elf(GuestMemory& memory, const LoadRequest& request, std::span<const std::uint8_t> image);
BootImage load_bzimage(GuestMemory& memory, const LoadRequest& request, std::span<const std::uint8_t> image);

inline std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) & ~(a - 1); }
inline std::uint64_t align_down(std::uint64_t v, std::uint64_t a) { return v & ~(a - 1); }

// Little-endian fields of a byte image (xover/byte_order.hpp); callers
// check the image is long enough first.
using xover::load_le;

std::string mib(std::uint64_t bytes);  // "12.5 MiB" style, for messages

}  // namespace xover::vmm::loader_detail
