// A KVM virtual machine fd: memory slots, the in-kernel irqchip, interrupt
// injection (irqfd, KVM_IRQ_LINE, MSI, GSI routing) and ioeventfds.
// Everything here must run in the process that created the VM.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "xover/kvm/unique_fd.hpp"
#include "xover/kvm/vcpu.hpp"

namespace xover::kvm {

class Vm {
public:
    // GSIs 0..23 are the IOAPIC pins (0..15 also the PICs); MSI routes are
    // allocated from here upward.
    static constexpr std::uint32_t kIrqchipGsis = 24;

    Vm(UniqueFd fd, int vcpu_mmap_size);
    Vm(Vm&&) noexcept;
    Vm& operator=(Vm&&) = delete;
    Vm(const Vm&) = delete;
    Vm& operator=(const Vm&) = delete;

    int fd() const { return fd_.get(); }
    // Whether a guest sees a change of the host mapping under a memory
    // slot at once, with the slot left as it is (KVM_CAP_SYNC_MMU).
    bool follows_host_mappings() const;

    // Setup (throw xover::Error on failure).
    void set_tss_addr(std::uint64_t gpa);
    void set_identity_map_addr(std::uint64_t gpa);
    void create_irqchip();
    void create_pit();  // in-kernel i8254 + port 0x61 (silent until the guest programs it)
    Vcpu create_vcpu(unsigned id);

    // Memory slots. A size of 0 deletes the slot (the way to swap backing).
    void set_memory_region(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size, void* host,
                           std::uint32_t flags = 0);
    void delete_memory_region(std::uint32_t slot) { set_memory_region(slot, 0, 0, nullptr); }

    // irqfd: a write to `fd` raises `gsi`. With a resample fd, the line is
    // level-triggered: KVM de-asserts it on the guest's EOI and signals
    // `resample_fd`, so the VMM can re-assert if the device is still high.
    void add_irqfd(int fd, std::uint32_t gsi, std::optional<int> resample_fd = std::nullopt);
    void remove_irqfd(int fd, std::uint32_t gsi);

    // ioeventfd: a guest write of `length` bytes at `address` (port or MMIO)
    // signals `fd` in the kernel, without an exit to userspace. With a
    // datamatch, only writes of that value do.
    void add_ioeventfd(int fd, std::uint64_t address, std::uint32_t length, bool pio,
                       std::optional<std::uint64_t> datamatch = std::nullopt);
    void remove_ioeventfd(int fd, std::uint64_t address, std::uint32_t length, bool pio,
                          std::optional<std::uint64_t> datamatch = std::nullopt);

    // Coalesced MMIO/PIO: writes in the zone are queued in the kvm_run ring.
    void register_coalesced(std::uint64_t address, std::uint32_t size, bool pio);
    void unregister_coalesced(std::uint64_t address, std::uint32_t size, bool pio);

    // Hot-path interrupt injection: never throw; return false on failure.
    bool irq_line(std::uint32_t irq, bool level) noexcept;
    bool signal_msi(std::uint64_t address, std::uint32_t data) noexcept;

    // GSI routing: the table always holds the irqchip routes for GSIs
    // 0..23 plus every MSI route set here; each change re-sends the whole
    // table (KVM_SET_GSI_ROUTING replaces it). Thread-safe.
    std::uint32_t allocate_gsi();
    void set_msi_route(std::uint32_t gsi, std::uint64_t address, std::uint32_t data);
    void remove_msi_route(std::uint32_t gsi);

private:
    void coalesced_zone(unsigned long request, const char* what, std::uint64_t address, std::uint32_t size, bool pio);
    struct MsiRoute {
        std::uint64_t address;
        std::uint32_t data;
    };
    void commit_routes_locked();

    UniqueFd fd_;
    int vcpu_mmap_size_ = 0;
    std::mutex routes_mutex_;
    std::map<std::uint32_t, MsiRoute> msi_routes_;
    std::uint32_t next_gsi_ = kIrqchipGsis;
};

}  // namespace xover::kvm
