// The CPUID a vCPU sees: what the host KVM supports, with vendor
// GenuineIntel, the vCPU's APIC id, the hypervisor bit, and optionally a
// template that hides features.
#pragma once

#include <linux/kvm.h>

#include <string>
#include <vector>

namespace xover::vmm {

enum class CpuTemplate {
    Host,      // everything KVM_GET_SUPPORTED_CPUID offers
    // Hides what a software KVM (and old hosts) cannot run at CPL0 or
    // migrate safely: XSAVE/OSXSAVE and everything that needs it (AVX,
    // AVX2, AVX-512, FMA, F16C, the XSAVE leaf 0xD), SMAP, SMEP, POPCNT,
    // FSGSBASE, PKU, and the TSC deadline timer stays. x2APIC is KEPT:
    // the in-kernel LAPIC emulates it completely on every host and it
    // spares the guest MMIO exits for APIC accesses.
    Baseline,
};

// "" or "host" -> Host, "baseline" -> Baseline; throws xover::Error otherwise.
CpuTemplate parse_cpu_template(const std::string& name);

// The entries for vCPU `cpu_index` of `cpu_count`. With a non-zero
// tsc_khz, the hypervisor timing leaf 0x40000010 (EAX: TSC kHz, EBX: local
// APIC bus kHz) and Intel's leaves 0x15/0x16 (crystal = the 1 GHz APIC bus)
// tell the guest its TSC frequency, so guests need no calibration loop.
std::vector<kvm_cpuid_entry2> make_vcpu_cpuid(std::vector<kvm_cpuid_entry2> supported, unsigned cpu_index,
                                             unsigned cpu_count, CpuTemplate cpu_template,
                                             std::uint32_t tsc_khz = 0);

}  // namespace xover::vmm
