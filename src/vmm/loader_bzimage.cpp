// Linux bzImage loader, 64-bit boot protocol (Documentation/x86/boot.rst):
// loads the protected-mode kernel, fills the zero page (struct boot_params)
// from the image's setup header plus our command line, initrd and e820
// map, and enters at load address + 0x200 in long mode with RSI = zero page.
#include <asm/bootparam.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "loader_internal.hpp"
#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::vmm::loader_detail {

namespace {

static_assert(sizeof(boot_params) == 4096);
static_assert(offsetof(boot_params, hdr) == 0x1f1);

constexpr std::uint16_t kMinProtocol = 0x0206;     // cmdline_size, 64-bit-clean header
constexpr std::uint8_t kLoaderTypeUndefined = 0xff;
constexpr std::uint16_t kHeapEnd = 0xfe00;         // conventional heap_end_ptr (setup heap ends at 0xfe00+0x200)
constexpr std::uint64_t kEntry64Offset = 0x200;    // startup_64 relative to the load address
constexpr std::uint64_t kSetupHeaderEnd = 0x268;   // last field we read (init_size) + 4

// The setup header fields we need, read once from the image.
struct SetupHeader {
    std::uint32_t setup_bytes;       // (setup_sects + 1) * 512: where the protected-mode kernel starts
    std::uint16_t version;
    std::uint8_t loadflags;
    std::uint16_t xloadflags;
    std::uint8_t relocatable;
    std::uint32_t kernel_alignment;
    std::uint32_t initrd_addr_max;
    std::uint32_t cmdline_size;
    std::uint64_t pref_address;
    std::uint32_t init_size;
    std::size_t header_end;          // 0x202 + byte at 0x201: bytes of the header to copy
};

SetupHeader parse_header(std::span<const std::uint8_t> image, const std::filesystem::path& path) {
    if (image.size() < kSetupHeaderEnd) throw Error("kernel {}: bzImage header is truncated", path.string());
    SetupHeader h{};
    unsigned sects = image[0x1f1];
    if (sects == 0) sects = 4;  // the protocol's historical default
    h.setup_bytes = (sects + 1) * 512;
    h.version = load_le<std::uint16_t>(image, 0x206);
    h.loadflags = image[0x211];
    h.kernel_alignment = load_le<std::uint32_t>(image, 0x230);
    h.relocatable = image[0x234];
    h.xloadflags = load_le<std::uint16_t>(image, 0x236);
    h.initrd_addr_max = load_le<std::uint32_t>(image, 0x22c);
    h.cmdline_size = load_le<std::uint32_t>(image, 0x238);
    h.pref_address = load_le<std::uint64_t>(image, 0x258);
    h.init_size = load_le<std::uint32_t>(image, 0x260);
    h.header_end = 0x202 + image[0x201];

    if (h.version < kMinProtocol)
        throw Error("kernel {}: boot protocol {}.{:02} is older than 2.06; xover needs a newer kernel", path.string(),
                    h.version >> 8, h.version & 0xff);
    if (!(h.xloadflags & XLF_KERNEL_64))
        throw Error("kernel {}: bzImage is not 64-bit capable (XLF_KERNEL_64 clear in xloadflags)", path.string());
    if (!(h.loadflags & LOADED_HIGH))
        throw Error("kernel {}: zImage (loaded low) is not supported; use a bzImage", path.string());
    if (h.setup_bytes >= image.size())
        throw Error("kernel {}: setup_sects {} points past the end of the file", path.string(), sects);
    return h;
}

// Where the protected-mode kernel goes: its preferred address when the
// whole init_size fits in RAM there, else 1 MiB if it can relocate.
std::uint64_t choose_load_address(const SetupHeader& h, const std::vector<E820Entry>& map, std::uint64_t need,
                                  const LoadRequest& request) {
    if (h.pref_address >= layout::kHighRamStart && inside_ram(map, h.pref_address, need)) return h.pref_address;
    if ((h.relocatable || h.pref_address == layout::kKernelLoadAddr) && inside_ram(map, layout::kKernelLoadAddr, need))
        return layout::kKernelLoadAddr;
    throw Error("kernel {} needs {} of RAM from {:#x} (init_size) but guest memory is {}", request.kernel.string(),
                mib(need), h.relocatable ? layout::kKernelLoadAddr : h.pref_address, mib(request.memory_bytes));
}

void fill_e820(boot_params& zp, const std::vector<E820Entry>& map, const std::filesystem::path& path) {
    if (map.size() > E820_MAX_ENTRIES_ZEROPAGE)
        throw Error("kernel {}: memory map has {} entries; the zero page holds {}", path.string(), map.size(),
                    E820_MAX_ENTRIES_ZEROPAGE);
    for (std::size_t i = 0; i < map.size(); ++i) {
        zp.e820_table[i].addr = map[i].addr;
        zp.e820_table[i].size = map[i].size;
        zp.e820_table[i].type = map[i].type;
    }
    zp.e820_entries = static_cast<std::uint8_t>(map.size());
}

}  // namespace

BootImage load_bzimage(GuestMemory& memory, const LoadRequest& request, std::span<const std::uint8_t> image) {
    const auto& path = request.kernel;
    const SetupHeader h = parse_header(image, path);
    const auto map = effective_memory_map(request);

    const auto payload = image.subspan(h.setup_bytes);
    const std::uint64_t need = std::max<std::uint64_t>(payload.size(), h.init_size);
    const std::uint64_t load_addr = choose_load_address(h, map, need, request);
    write_guest(memory, load_addr, payload, fmt::format("kernel {}", path.string()));
    const std::uint64_t kernel_end = load_addr + need;

    const std::uint64_t cmdline = place_cmdline(memory, request, h.cmdline_size);
    // initrd_addr_max is the highest address the initrd's last byte may have.
    const std::uint64_t initrd_limit =
        std::min<std::uint64_t>(std::uint64_t(h.initrd_addr_max) + 1, layout::kMmioHoleStart);
    const PlacedInitrd initrd = place_initrd(memory, request, map, kernel_end, initrd_limit);

    boot_params zp{};
    const std::size_t header_len = std::min({h.header_end, image.size(), sizeof(boot_params)}) - 0x1f1;
    std::memcpy(reinterpret_cast<std::uint8_t*>(&zp) + 0x1f1, image.data() + 0x1f1, header_len);
    zp.hdr.type_of_loader = kLoaderTypeUndefined;
    zp.hdr.loadflags |= CAN_USE_HEAP;
    zp.hdr.heap_end_ptr = kHeapEnd;
    zp.hdr.code32_start = static_cast<std::uint32_t>(load_addr);
    zp.hdr.cmd_line_ptr = static_cast<std::uint32_t>(cmdline);
    zp.ext_cmd_line_ptr = static_cast<std::uint32_t>(cmdline >> 32);
    zp.hdr.ramdisk_image = static_cast<std::uint32_t>(initrd.addr);
    zp.hdr.ramdisk_size = static_cast<std::uint32_t>(initrd.size);
    zp.ext_ramdisk_image = static_cast<std::uint32_t>(initrd.addr >> 32);
    zp.ext_ramdisk_size = static_cast<std::uint32_t>(initrd.size >> 32);
    fill_e820(zp, map, path);
    memory.write(layout::kZeroPageAddr, zp);

    return BootImage{BootImage::Mode::Linux64, load_addr + kEntry64Offset, layout::kZeroPageAddr, kernel_end};
}

}  // namespace xover::vmm::loader_detail
