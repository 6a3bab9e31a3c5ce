// How device models raise interrupts, without knowing about KVM.
// The machine implements these with irqfds; unit tests use fakes.
#pragma once

#include <cstdint>

namespace xover::vmm {

// A level-triggered INTx pin (e1000). The machine drives it through an
// irqfd with KVM_IRQFD_FLAG_RESAMPLE: raising it injects the interrupt; on
// the guest's EOI the machine asks level() again and re-injects if high.
class IrqLine {
public:
    virtual ~IrqLine() = default;
    virtual void set_level(bool high) = 0;
};

// MSI-X vectors (virtio-net). The device programs a vector's message from
// its MSI-X table and fires it; the machine keeps one irqfd per vector
// bound to a GSI route, so firing is one eventfd write, with no exit.
class MsiController {
public:
    virtual ~MsiController() = default;
    virtual void program(unsigned vector, std::uint64_t address, std::uint32_t data) = 0;
    virtual void fire(unsigned vector) = 0;
    // The eventfd behind a vector: crossover peers write it directly.
    virtual int eventfd(unsigned vector) = 0;
};

}  // namespace xover::vmm
