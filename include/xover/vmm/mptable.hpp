// The Intel MultiProcessor Specification 1.4 tables that let a guest
// without ACPI (the minimal Linux, the tiny kernels) find its CPUs, the
// IOAPIC and how ISA IRQs and PCI INTx pins reach IOAPIC inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "xover/vmm/guest_memory.hpp"

namespace xover::vmm {

struct MpTableConfig {
    unsigned cpus = 1;
    std::uint64_t address = 0;  // where the floating pointer goes (layout::kMpTableAddr)
    std::uint32_t cpu_signature = 0x600;  // CPUID.1:EAX
    std::uint32_t cpu_features = 0x201;   // CPUID.1:EDX (FPU, APIC)
};

// Builds the floating pointer followed by the configuration table:
// processors (APIC id = index; CPU 0 is the BSP), buses (0 = PCI, 1 = ISA),
// the IOAPIC (id = cpus) at 0xFEC00000, I/O interrupts ISA IRQ n -> pin n
// (edge, active high; IRQ 2 is the cascade and omitted) and PCI slot s pin
// p -> pin layout::pci_intx_gsi(s, p) (level, active high), local ExtINT
// on LINT0 and NMI on LINT1.
std::vector<std::uint8_t> build_mptable(const MpTableConfig& config);

// Writes it into guest memory; throws xover::Error if it does not fit.
void write_mptable(GuestMemory& memory, const MpTableConfig& config);

}  // namespace xover::vmm
