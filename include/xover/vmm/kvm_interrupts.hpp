// The machine's implementations of the interrupt interfaces device models
// use (interrupts.hpp), on top of the in-kernel irqchip.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "xover/kvm/event_fd.hpp"
#include "xover/kvm/vm.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/interrupts.hpp"

namespace xover::vmm {

// A line driven with KVM_IRQ_LINE (one ioctl per change). For ISA devices
// with rare interrupts, such as the UART on IRQ 4 (edge: a rising level).
class KvmIrqLine final : public IrqLine {
public:
    KvmIrqLine(kvm::Vm& vm, std::uint32_t gsi) : vm_(vm), gsi_(gsi) {}
    void set_level(bool high) override;

private:
    kvm::Vm& vm_;
    std::uint32_t gsi_;
};

// A level-triggered line over an irqfd with KVM_IRQFD_FLAG_RESAMPLE (PCI
// INTx). Raising it writes the trigger eventfd (no exit, no ioctl). KVM
// lowers the line on the guest's EOI and signals the resample eventfd; the
// I/O thread then re-raises it if the device still holds it high.
class IrqfdLevelLine final : public IrqLine {
public:
    IrqfdLevelLine(kvm::Vm& vm, EventLoop& loop, std::uint32_t gsi);
    ~IrqfdLevelLine() override;
    IrqfdLevelLine(const IrqfdLevelLine&) = delete;
    IrqfdLevelLine& operator=(const IrqfdLevelLine&) = delete;

    void set_level(bool high) override;
    bool level() const { return level_.load(std::memory_order_acquire); }
    std::uint32_t gsi() const { return gsi_; }
    int trigger_fd() const { return trigger_.fd(); }
    std::uint64_t resamples() const { return resamples_.load(std::memory_order_relaxed); }

private:
    void on_resample();

    kvm::Vm& vm_;
    EventLoop& loop_;
    std::uint32_t gsi_;
    kvm::EventFd trigger_;
    kvm::EventFd resample_;
    std::atomic<bool> level_{false};
    std::atomic<std::uint64_t> resamples_{0};
};

// MSI/MSI-X vectors: each vector owns a GSI with an MSI route and an irqfd,
// so fire() is one eventfd write. Routes are updated only when a vector's
// message changes.
class KvmMsiController final : public MsiController {
public:
    KvmMsiController(kvm::Vm& vm, unsigned vectors);
    ~KvmMsiController() override;
    KvmMsiController(const KvmMsiController&) = delete;
    KvmMsiController& operator=(const KvmMsiController&) = delete;

    void program(unsigned vector, std::uint64_t address, std::uint32_t data) override;
    void fire(unsigned vector) override;
    int eventfd(unsigned vector) override;
    unsigned vectors() const { return unsigned(vectors_.size()); }

private:
    struct Vector {
        std::uint32_t gsi;
        kvm::EventFd fd;
        bool programmed = false;
        std::uint64_t address = 0;
        std::uint32_t data = 0;
    };
    kvm::Vm& vm_;
    std::vector<Vector> vectors_;
};

}  // namespace xover::vmm
