// Puts the boot vCPU into the state a BootImage asks for (loader.hpp):
//  Pvh32   32-bit protected mode, paging off, flat 4 GiB segments
//          (CS = 0x08, data = 0x18), EBX = hvm_start_info.
//  Linux64 long mode with an identity map of the first 4 GiB (2 MiB pages at
//          layout::kPml4Addr...), CS = 0x10 (64-bit), DS/ES/SS = 0x18,
//          RSI = boot_params.
// The boot GDT is written at layout::kGdtAddr in both cases.
#pragma once

#include "xover/kvm/vcpu.hpp"
#include "xover/vmm/guest_memory.hpp"
#include "xover/vmm/loader.hpp"

namespace xover::vmm {

inline constexpr std::uint16_t kBootCode32Selector = 0x08;
inline constexpr std::uint16_t kBootCode64Selector = 0x10;
inline constexpr std::uint16_t kBootDataSelector = 0x18;
inline constexpr std::uint16_t kBootTssSelector = 0x20;

void setup_boot_vcpu(kvm::Vcpu& vcpu, GuestMemory& memory, const BootImage& image);

}  // namespace xover::vmm
