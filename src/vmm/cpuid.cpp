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

constexpr std::uint32_t kApicBusKhz = 1'000'000;  // KVM's LAPIC timer runs at 1 GHz

void replace_leaf(std::vector<kvm_cpuid_entry2>& entries, const kvm_cpuid_entry2& leaf) {
    std::erase_if(entries, [&](const kvm_cpuid_entry2& e) { return e.function == leaf.function; });
    entries.push_back(leaf);
}

// Leaves 0x15 (TSC = crystal * EBX / EAX, crystal Hz in ECX) and 0x16 (base
// MHz): the TSC rate as Intel CPUs state it, and the only way a Linux
// without KVM guest support learns it. Without them it times the TSC
// against the PIT, which fails on a software KVM (too few PIT reads per
// 10 ms), and falls back to a jiffies clock, a PIT tick and a delay loop
// calibrated off by orders of magnitude. The crystal is the LAPIC timer's
// clock (Linux sets its APIC timer period from it). Linux multiplies
// crystal kHz by EBX in 32 bits, so EBX stays <= 4294; the closest ratio
// under that bound is within ~1 ppm.
void add_crystal_leaves(std::vector<kvm_cpuid_entry2>& entries, std::uint32_t tsc_khz) {
    constexpr std::uint64_t kMaxNumerator = 0xffffffffu / kApicBusKhz, kMaxDenominator = 1u << 16;
    std::uint32_t best_num = 0, best_den = 1;
    std::uint64_t best_err = ~0ull;
    for (std::uint64_t den = 1; den <= kMaxDenominator; ++den) {
        std::uint64_t num = (tsc_khz * den + kApicBusKhz / 2) / kApicBusKhz;
        if (num > kMaxNumerator) break;
        if (num == 0) continue;
        // |num/den - tsc/bus| * bus, in millionths (bus is the same for all).
        std::uint64_t want = tsc_khz * den, have = num * kApicBusKhz;
        std::uint64_t err = (have > want ? have - want : want - have) * 1'000'000 / den;
        if (err < best_err) best_err = err, best_num = std::uint32_t(num), best_den = std::uint32_t(den);
        if (err == 0) break;
    }
    if (best_num == 0) return;  // a TSC under ~8 kHz: leave it to the guest
    kvm_cpuid_entry2 crystal{};
    crystal.function = 0x15;
    crystal.eax = best_den;
    crystal.ebx = best_num;
    crystal.ecx = kApicBusKhz * 1000;
    replace_leaf(entries, crystal);
    kvm_cpuid_entry2 frequency{};
    frequency.function = 0x16;
    frequency.eax = frequency.ebx = tsc_khz / 1000;
    frequency.ecx = kApicBusKhz / 1000;
    replace_leaf(entries, frequency);
    for (auto& e : entries)
        if (e.function == 0) e.eax = std::max(e.eax, 0x16u);
}

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
        add_crystal_leaves(entries, tsc_khz);
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
