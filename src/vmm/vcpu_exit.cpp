#include "xover/vmm/vcpu_exit.hpp"

#include <span>

namespace xover::vmm {

std::uint64_t ExitCounters::total() const {
    std::uint64_t sum = 0;
    for (const auto& c : by_reason) sum += c.load(std::memory_order_relaxed);
    return sum;
}

std::string_view exit_reason_name(std::uint32_t reason) {
    switch (reason) {
    case KVM_EXIT_UNKNOWN: return "unknown";
    case KVM_EXIT_EXCEPTION: return "exception";
    case KVM_EXIT_IO: return "io";
    case KVM_EXIT_HYPERCALL: return "hypercall";
    case KVM_EXIT_DEBUG: return "debug";
    case KVM_EXIT_HLT: return "hlt";
    case KVM_EXIT_MMIO: return "mmio";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "irq_window";
    case KVM_EXIT_SHUTDOWN: return "shutdown";
    case KVM_EXIT_FAIL_ENTRY: return "fail_entry";
    case KVM_EXIT_INTR: return "intr";
    case KVM_EXIT_SET_TPR: return "set_tpr";
    case KVM_EXIT_TPR_ACCESS: return "tpr_access";
    case KVM_EXIT_NMI: return "nmi";
    case KVM_EXIT_INTERNAL_ERROR: return "internal_error";
    case KVM_EXIT_SYSTEM_EVENT: return "system_event";
    case KVM_EXIT_IOAPIC_EOI: return "ioapic_eoi";
    case KVM_EXIT_X86_RDMSR: return "rdmsr";
    case KVM_EXIT_X86_WRMSR: return "wrmsr";
    default: return "other";
    }
}

ExitOutcome handle_exit(kvm_run& run, IoBus& pio, IoBus& mmio, ExitCounters& counters) noexcept {
    counters.by_reason[run.exit_reason < ExitCounters::kReasons ? run.exit_reason : 0].fetch_add(
        1, std::memory_order_relaxed);
    switch (run.exit_reason) {
    case KVM_EXIT_IO: {
        auto* base = reinterpret_cast<std::uint8_t*>(&run) + run.io.data_offset;
        for (std::uint32_t i = 0; i < run.io.count; ++i) {
            std::span<std::uint8_t> item(base + std::size_t(i) * run.io.size, run.io.size);
            if (run.io.direction == KVM_EXIT_IO_OUT)
                pio.write(run.io.port, item);
            else
                pio.read(run.io.port, item);
        }
        return ExitOutcome::Continue;
    }
    case KVM_EXIT_MMIO: {
        std::uint32_t len = run.mmio.len <= 8 ? run.mmio.len : 8;
        std::span<std::uint8_t> data(run.mmio.data, len);
        if (run.mmio.is_write)
            mmio.write(run.mmio.phys_addr, data);
        else
            mmio.read(run.mmio.phys_addr, data);
        return ExitOutcome::Continue;
    }
    case KVM_EXIT_INTR: return ExitOutcome::Interrupted;
    case KVM_EXIT_HLT: return ExitOutcome::Halted;
    case KVM_EXIT_SHUTDOWN: return ExitOutcome::TripleFault;
    case KVM_EXIT_SYSTEM_EVENT: return ExitOutcome::SystemEvent;
    case KVM_EXIT_INTERNAL_ERROR: return ExitOutcome::InternalError;
    case KVM_EXIT_FAIL_ENTRY: return ExitOutcome::FailEntry;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_IOAPIC_EOI: return ExitOutcome::Continue;
    default: return ExitOutcome::Unhandled;
    }
}

}  // namespace xover::vmm
