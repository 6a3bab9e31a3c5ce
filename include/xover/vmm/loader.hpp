// Kernel loaders: put a kernel (PVH ELF or Linux bzImage), its command line,
// initrd and the boot-info structure into guest memory, and say where the
// boot vCPU must start.
//
//   Pvh32:   start in 32-bit protected mode, paging off, at `entry`,
//            EBX = boot_info (hvm_start_info GPA). CS/DS flat 4 GiB.
//   Linux64: start in 64-bit long mode (identity-mapped page tables covering
//            at least the kernel, boot_params and cmdline) at `entry`,
//            RSI = boot_info (boot_params / "zero page" GPA).
//
// The loader only writes guest memory; vCPU register/GDT/page-table setup
// is the machine's job.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "xover/vmm/guest_memory.hpp"

namespace xover::vmm {

struct E820Entry {
    static constexpr std::uint32_t kRam = 1;
    static constexpr std::uint32_t kReserved = 2;

    std::uint64_t addr = 0;
    std::uint64_t size = 0;
    std::uint32_t type = kRam;  // 1 RAM, 2 reserved
};

struct LoadRequest {
    std::filesystem::path kernel;
    std::string cmdline;
    std::optional<std::filesystem::path> initrd;
    // The guest's physical memory map as the machine laid it out (RAM below
    // 3 GiB, the MMIO hole reserved, RAM above 4 GiB). If empty, the loader
    // assumes one RAM range [0, memory_bytes).
    std::vector<E820Entry> memory_map;
    std::uint64_t memory_bytes = 0;
};

struct BootImage {
    enum class Mode { Pvh32, Linux64 };
    Mode mode = Mode::Pvh32;
    std::uint64_t entry = 0;
    std::uint64_t boot_info = 0;   // hvm_start_info GPA (EBX) or boot_params GPA (RSI)
    std::uint64_t kernel_end = 0;  // first byte after the loaded kernel image (incl. bss / init_size)
};

// The standard map for a VM with `memory_bytes` of RAM laid out per
// layout.hpp: RAM [0, 0x9fc00), reserved [0x9fc00, 1 MiB), RAM from 1 MiB to
// min(memory, 3 GiB), and the rest of RAM from 4 GiB up. The machine may pass
// this (or its own) as LoadRequest::memory_map.
std::vector<E820Entry> default_memory_map(std::uint64_t memory_bytes);

// Detects the format (ELF with a PVH note, or bzImage) and loads it.
// Throws xover::Error with a one-line message naming the file.
BootImage load_kernel(GuestMemory& memory, const LoadRequest& request);

// What load_kernel() refuses before it needs guest memory: an unreadable,
// empty or oversized file, or one that is neither an ELF nor a bzImage.
// `xover run` calls it before it opens /dev/kvm, so a bad kernel is named
// on any host. Throws xover::Error as load_kernel() does.
void check_kernel_format(const std::filesystem::path& kernel, std::uint64_t memory_bytes);

}  // namespace xover::vmm
