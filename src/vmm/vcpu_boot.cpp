#include "xover/vmm/vcpu_boot.hpp"

#include <array>

#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::vmm {

namespace {

constexpr std::uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Et = 1ull << 4, kCr0Ne = 1ull << 5,
                        kCr0Wp = 1ull << 16, kCr0Pg = 1ull << 31;
constexpr std::uint64_t kCr4Pae = 1ull << 5;
constexpr std::uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;
constexpr std::uint64_t kPtePresent = 1, kPteWrite = 2, kPteHuge = 1ull << 7;

// Flat descriptors: base 0, limit 0xfffff pages.
constexpr std::uint64_t kGdtCode32 = 0x00cf9b000000ffff;  // present, code exec/read, accessed, D=1, G=1
constexpr std::uint64_t kGdtCode64 = 0x00af9b000000ffff;  // same with L=1, D=0
constexpr std::uint64_t kGdtData = 0x00cf93000000ffff;    // present, data read/write, accessed
constexpr std::uint64_t kGdtTss = 0x00008b0000000067;     // busy 32-bit TSS at 0, limit 0x67

kvm_segment segment_from(std::uint64_t descriptor, std::uint16_t selector) {
    kvm_segment s{};
    s.selector = selector;
    s.base = ((descriptor >> 16) & 0xffffff) | ((descriptor >> 32) & 0xff000000);
    std::uint32_t limit = std::uint32_t((descriptor & 0xffff) | ((descriptor >> 32) & 0xf0000));
    s.g = (descriptor >> 55) & 1;
    s.limit = s.g ? (limit << 12) | 0xfff : limit;
    s.type = (descriptor >> 40) & 0xf;
    s.s = (descriptor >> 44) & 1;
    s.dpl = (descriptor >> 45) & 3;
    s.present = (descriptor >> 47) & 1;
    s.avl = (descriptor >> 52) & 1;
    s.l = (descriptor >> 53) & 1;
    s.db = (descriptor >> 54) & 1;
    s.unusable = s.present ? 0 : 1;
    return s;
}

void write_gdt(GuestMemory& memory) {
    const std::array<std::uint64_t, 5> gdt{0, kGdtCode32, kGdtCode64, kGdtData, kGdtTss};
    if (!memory.write(layout::kGdtAddr, gdt)) throw Error("boot GDT does not fit in guest RAM");
}

void write_identity_page_tables(GuestMemory& memory) {
    // PML4[0] -> PDPT; PDPT[0..3] -> four PDs of 512 2-MiB pages each.
    std::array<std::uint64_t, 512> table{};
    table[0] = layout::kPdptAddr | kPtePresent | kPteWrite;
    if (!memory.write(layout::kPml4Addr, table)) throw Error("boot page tables do not fit in guest RAM");
    table.fill(0);
    for (std::uint64_t i = 0; i < 4; ++i) table[i] = (layout::kPdAddr + i * 0x1000) | kPtePresent | kPteWrite;
    memory.write(layout::kPdptAddr, table);
    for (std::uint64_t pd = 0; pd < 4; ++pd) {
        for (std::uint64_t i = 0; i < 512; ++i)
            table[i] = ((pd * 512 + i) << 21) | kPtePresent | kPteWrite | kPteHuge;
        if (!memory.write(layout::kPdAddr + pd * 0x1000, table))
            throw Error("boot page tables do not fit in guest RAM");
    }
}

}  // namespace

void setup_boot_vcpu(kvm::Vcpu& vcpu, GuestMemory& memory, const BootImage& image) {
    write_gdt(memory);
    kvm_sregs sregs = vcpu.sregs();
    sregs.gdt.base = layout::kGdtAddr;
    sregs.gdt.limit = 5 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    kvm_segment data = segment_from(kGdtData, kBootDataSelector);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = segment_from(kGdtTss, kBootTssSelector);
    sregs.ldt = kvm_segment{};
    sregs.ldt.type = 2;  // LDT, present, so entry checks accept it
    sregs.ldt.present = 1;

    kvm_regs regs{};
    regs.rflags = 0x2;  // reserved bit 1; interrupts off
    regs.rip = image.entry;

    switch (image.mode) {
    case BootImage::Mode::Pvh32:
        sregs.cs = segment_from(kGdtCode32, kBootCode32Selector);
        sregs.cr0 = kCr0Pe | kCr0Et;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
        regs.rbx = image.boot_info;
        break;
    case BootImage::Mode::Linux64:
        write_identity_page_tables(memory);
        sregs.cs = segment_from(kGdtCode64, kBootCode64Selector);
        sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
        sregs.cr3 = layout::kPml4Addr;
        sregs.cr4 = kCr4Pae;
        sregs.efer = kEferLme | kEferLma;
        regs.rsi = image.boot_info;
        break;
    }
    vcpu.set_sregs(sregs);
    vcpu.set_regs(regs);

    kvm_fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word
    fpu.mxcsr = 0x1f80;  // SSE exceptions masked
    vcpu.set_fpu(fpu);
}

}  // namespace xover::vmm
