// The PVH boot ABI (Xen's arch-x86/hvm/start_info.h, version 1), as laid out
// in guest memory: what a PVH kernel finds at EBX on entry. Written by the
// PVH loader, read back by its tests.
#pragma once

#include <cstdint>

namespace xover::vmm::pvh {

inline constexpr std::uint32_t kStartInfoMagic = 0x336ec578;  // "xEn3" with 0x80 bit of the "E" set
inline constexpr std::uint32_t kElfNoteType = 18;             // XEN_ELFNOTE_PHYS32_ENTRY

struct StartInfo {
    std::uint32_t magic;
    std::uint32_t version;        // 1: memmap fields present
    std::uint32_t flags;
    std::uint32_t nr_modules;
    std::uint64_t modlist_paddr;  // ModlistEntry[nr_modules]
    std::uint64_t cmdline_paddr;  // NUL-terminated, 0 if none
    std::uint64_t rsdp_paddr;     // ACPI RSDP, 0 if none
    std::uint64_t memmap_paddr;   // MemmapEntry[memmap_entries]
    std::uint32_t memmap_entries;
    std::uint32_t reserved;
};
static_assert(sizeof(StartInfo) == 56);

struct ModlistEntry {
    std::uint64_t paddr;
    std::uint64_t size;
    std::uint64_t cmdline_paddr;
    std::uint64_t reserved;
};
static_assert(sizeof(ModlistEntry) == 32);

struct MemmapEntry {
    std::uint64_t addr;
    std::uint64_t size;
    std::uint32_t type;  // E820 types: 1 RAM, 2 reserved
    std::uint32_t reserved;
};
static_assert(sizeof(MemmapEntry) == 24);

}  // namespace xover::vmm::pvh
