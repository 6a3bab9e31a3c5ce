#include "xover/vmm/cpuid.hpp"

#include <algorithm>

#include "xover/error.hpp"

namespace xover::vmm {

namespace {

constexpr std::uint32_t bit(unsigned n) { return 1u << n; }

// CPUID.1:ECX
constexpr std::uint32_t kLeaf1EcxFma = bit(12), kLeaf1EcxPopcnt = bit(23), kLeaf1EcxXsave = bit(26),
                        kLeaf1EcxOsxsave = bit(27), kLeaf1EcxAvx = bit(28), kLeaf1EcxF16c = bit(29),
                        kLeaf1EcxHypervisor = bit(31);
// CPUID.7.0:EBX
constexpr std::uint32_t kLeaf7EbxFsgsbase = bit(0), kLeaf7EbxAvx2 = bit(5), kLeaf7EbxSmep = bit(7),
                        kLeaf7EbxSmap = bit(20);
constexpr std::uint32_t kLeaf7EbxAvx512 = bit(16) | bit(17) | bit(21) | bit(26) | bit(27) | bit(28) | bit(30) |
                                          bit(31);
// CPUID.7.0:ECX PKU/OSPKE and the AVX-512 extensions.
constexpr std::uint32_t kLeaf7EcxHidden = bit(1) | bit(3) | bit(4) | bit(6) | bit(8) | bit(9) | bit(10) | bit(11) |
                                          bit(12) | bit(14);
// CPUID.80000001:ECX ABM (LZCNT, reported together with POPCNT by some guests).
constexpr std::uint32_t kExt1EcxAbm = bit(5);

// "GenuineIntel" as EBX, EDX, ECX.
constexpr std::uint32_t kIntelEbx = 0x756e6547, kIntelEdx = 0x49656e69, kIntelEcx = 0x6c65746e;

}  // namespace

CpuTemplate parse_cpu_template(const std::string& name) {
    if (name.empty() || name == "host") return CpuTemplate::Host;
    if (name == "baseline") return CpuTemplate::Baseline;
    throw Error("unknown CPU template \"{}\" (expected \"host\" or \"baseline\")", name);
}

std::vector<kvm_cpuid_entry2> make_vcpu_cpuid(std::vector<kvm_cpuid_entry2> entries, unsigned cpu_index,
                                             unsigned cpu_count, CpuTemplate cpu_template, std::uint32_t tsc_khz) {
    if (tsc_khz) {
        constexpr std::uint32_t kTimingLeaf = 0x40000010;
        constexpr std::uint32_t kApicBusKhz = 1'000'000;  // KVM's LAPIC timer runs at 1 GHz
        bool have_base = false;
        for (auto& e : entries)
            if (e.function == 0x40000000) e.eax = std::max(e.eax, kTimingLeaf), have_base = true;
        if (!have_base) {
            kvm_cpuid_entry2 base{};
            base.function = 0x40000000;
            base.eax = kTimingLeaf;
            base.ebx = 0x4b4d564b, base.ecx = 0x564b4d56, base.edx = 0x4d;  // "KVMKVMKVM"
            entries.push_back(base);
        }
        entries.erase(std::remove_if(entries.begin(), entries.end(),
                                     [](const kvm_cpuid_entry2& e) { return e.function == kTimingLeaf; }),
                      entries.end());
        kvm_cpuid_entry2 timing{};
        timing.function = kTimingLeaf;
        timing.eax = tsc_khz;
        timing.ebx = kApicBusKhz;
        entries.push_back(timing);
    }
    const bool baseline = cpu_template == CpuTemplate::Baseline;
    if (baseline) {
        // Without XSAVE there is nothing to describe in leaf 0xD.
        entries.erase(std::remove_if(entries.begin(), entries.end(),
                                     [](const kvm_cpuid_entry2& e) { return e.function == 0xd; }),
                      entries.end());
    }
    for (auto& e : entries) {
        switch (e.function) {
        case 0x0:
            e.ebx = kIntelEbx;
            e.edx = kIntelEdx;
            e.ecx = kIntelEcx;
            break;
        case 0x1:
            // EBX[31:24] initial APIC id, [23:16] logical processors.
            e.ebx = (e.ebx & 0x0000ffff) | (cpu_index << 24) | (std::min(cpu_count, 255u) << 16);
            e.ecx |= kLeaf1EcxHypervisor;
            if (baseline)
                e.ecx &= ~(kLeaf1EcxFma | kLeaf1EcxPopcnt | kLeaf1EcxXsave | kLeaf1EcxOsxsave | kLeaf1EcxAvx |
                           kLeaf1EcxF16c);
            break;
        case 0x7:
            if (baseline && e.index == 0) {
                e.ebx &= ~(kLeaf7EbxFsgsbase | kLeaf7EbxAvx2 | kLeaf7EbxSmep | kLeaf7EbxSmap | kLeaf7EbxAvx512);
                e.ecx &= ~kLeaf7EcxHidden;
                e.edx = 0;  // AVX-512 4VNNIW/4FMAPS, AMX and friends
            }
            break;
        case 0xb:
        case 0x1f:
            e.edx = cpu_index;  // x2APIC id
            break;
        case 0x80000001:
            if (baseline) e.ecx &= ~kExt1EcxAbm;
            break;
        default: break;
        }
    }
    return entries;
}

}  // namespace xover::vmm
