// One KVM exit, handled: port I/O and MMIO are dispatched on the buses
// (string I/O included: `count` items of `size` bytes); everything else is
// classified for the vCPU loop, which reports and stops where needed.
// A free function over kvm_run so tests can feed it synthetic exits.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "xover/vmm/io_bus.hpp"

namespace xover::vmm {

enum class ExitOutcome {
    Continue,       // handled; run again
    Interrupted,    // KVM_RUN returned for a signal / immediate_exit
    Halted,         // HLT reached userspace (no in-kernel wakeup source)
    TripleFault,    // KVM_EXIT_SHUTDOWN
    SystemEvent,    // KVM_EXIT_SYSTEM_EVENT (shutdown, reset, crash)
    InternalError,  // KVM_EXIT_INTERNAL_ERROR (e.g. emulation failure)
    FailEntry,      // KVM_EXIT_FAIL_ENTRY (invalid guest state)
    Unhandled,      // an exit reason xover does not implement
};

// Exit counts by KVM_EXIT_* reason.
struct ExitCounters {
    static constexpr std::size_t kReasons = 64;
    std::array<std::atomic<std::uint64_t>, kReasons> by_reason{};
    std::uint64_t total() const;
};

std::string_view exit_reason_name(std::uint32_t reason);

ExitOutcome handle_exit(kvm_run& run, IoBus& pio, IoBus& mmio, ExitCounters& counters) noexcept;

}  // namespace xover::vmm
