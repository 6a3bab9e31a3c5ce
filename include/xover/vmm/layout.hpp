// Where xover puts things in guest-physical address space. The machine
// (RAM slots, MP table, vCPU boot state) and the kernel loaders (zero page,
// command line, hvm_start_info, e820) both use these constants, so the
// structures they write never overlap.
//
//   0x0000_0000  real-mode IVT / BDA (left zero)
//   0x0000_0500  boot GDT (Linux64 entry)
//   0x0000_6000  hvm_start_info + its memory map (PVH)      [4 KiB]
//   0x0000_7000  zero page / struct boot_params (Linux64)  [4 KiB]
//   0x0000_9000  PML4, PDPT, 4 x PD: identity map of 4 GiB (Linux64)
//   0x0002_0000  kernel command line                       [64 KiB max]
//   0x0009_fc00  reserved to 1 MiB (EBDA, BIOS area)
//   0x000f_0000  MP floating pointer + MP configuration table
//   0x0010_0000  kernel (loaded where its ELF/bzImage says, normally 1 MiB)
//   ...          RAM up to min(memory, 3 GiB)
//   0xc000_0000  32-bit PCI MMIO window (BARs), up to the IOAPIC
//   0xfec0_0000  IOAPIC,  0xfee0_0000 LAPIC
//   0xfffb_c000  KVM identity-map page + TSS (3 pages), reserved
//   0x1_0000_0000  RAM above 3 GiB continues here
#pragma once

#include <cstdint>
#include <optional>

namespace xover::vmm::layout {

// Boot structures (all below 640 KiB, so any RAM size >= 1 MiB holds them).
inline constexpr std::uint64_t kGdtAddr = 0x500;
inline constexpr std::uint64_t kStartInfoAddr = 0x6000;   // PVH struct hvm_start_info
inline constexpr std::uint64_t kStartInfoSize = 0x1000;   // incl. hvm_memmap_table_entry[]
inline constexpr std::uint64_t kZeroPageAddr = 0x7000;    // Linux struct boot_params
inline constexpr std::uint64_t kZeroPageSize = 0x1000;
inline constexpr std::uint64_t kPml4Addr = 0x9000;
inline constexpr std::uint64_t kPdptAddr = 0xa000;
inline constexpr std::uint64_t kPdAddr = 0xb000;          // 4 pages: 0xb000..0xefff
inline constexpr std::uint64_t kCmdlineAddr = 0x20000;
inline constexpr std::uint64_t kCmdlineMax = 0x10000;     // bytes, incl. the NUL

// Low memory: usable RAM ends at the EBDA; 640 KiB..1 MiB is reserved.
inline constexpr std::uint64_t kLowRamEnd = 0x9fc00;
inline constexpr std::uint64_t kEbdaAddr = 0x9fc00;
inline constexpr std::uint64_t kHighRamStart = 0x100000;  // 1 MiB
inline constexpr std::uint64_t kMpTableAddr = 0xf0000;    // floating pointer, then config table
inline constexpr std::uint64_t kMpTableMax = 0x10000;

// Default load address of a Linux kernel's protected-mode part.
inline constexpr std::uint64_t kKernelLoadAddr = 0x100000;

// The 32-bit hole: RAM stops at 3 GiB and resumes at 4 GiB.
inline constexpr std::uint64_t kMmioHoleStart = 0xc0000000;
inline constexpr std::uint64_t kMmioHoleEnd = 0x100000000;
inline constexpr std::uint64_t kPciMmioStart = 0xc0000000;
inline constexpr std::uint64_t kPciMmioEnd = 0xfec00000;
inline constexpr std::uint64_t kPciIoStart = 0xc000;
inline constexpr std::uint64_t kPciIoEnd = 0x10000;
inline constexpr std::uint64_t kIoapicAddr = 0xfec00000;
inline constexpr std::uint64_t kLapicAddr = 0xfee00000;
inline constexpr std::uint64_t kKvmIdentityMapAddr = 0xfffbc000;  // 1 page
inline constexpr std::uint64_t kKvmTssAddr = 0xfffbd000;          // 3 pages

// How much RAM lives below the hole for a VM of `memory` bytes, and above.
constexpr std::uint64_t ram_below_hole(std::uint64_t memory) {
    return memory < kMmioHoleStart ? memory : kMmioHoleStart;
}
constexpr std::uint64_t ram_above_hole(std::uint64_t memory) {
    return memory - ram_below_hole(memory);
}

// Guest RAM as one file (vmm::RamMemory's memfd; what a crossover peer
// maps, and what a vhost-user front-end's RAM must look like to be shared):
// the part below the hole at file offset = GPA, the part from 4 GiB right
// after it. The file offset of [gpa, gpa + len), or nullopt for a range in
// or across the hole (or one that wraps).
constexpr std::optional<std::uint64_t> ram_file_offset(std::uint64_t gpa, std::uint64_t len = 1) {
    if (gpa + len < gpa) return std::nullopt;
    if (gpa + len <= kMmioHoleStart) return gpa;
    if (gpa >= kMmioHoleEnd) return gpa - (kMmioHoleEnd - kMmioHoleStart);
    return std::nullopt;
}

// Fixed port I/O.
inline constexpr std::uint16_t kCom1Port = 0x3f8;
inline constexpr std::uint8_t kCom1Irq = 4;
inline constexpr std::uint16_t kDebugExitPort = 0xf4;
inline constexpr std::uint16_t kPciConfigAddressPort = 0xcf8;
inline constexpr std::uint16_t kPciConfigDataPort = 0xcfc;

// IOAPIC GSIs of PCI INTx: device in slot s, pin p (0 = INTA#) goes to
// 16 + ((s + p) % 4)  (the usual swizzle; the MP table says the same).
inline constexpr unsigned kPciIntxFirstGsi = 16;
constexpr unsigned pci_intx_gsi(unsigned slot, unsigned pin_index) {
    return kPciIntxFirstGsi + (slot + pin_index) % 4;
}
inline constexpr unsigned kIoapicPins = 24;

}  // namespace xover::vmm::layout
