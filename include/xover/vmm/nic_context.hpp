// What the machine hands the device factories (the device manager,
// src/devices) for each NIC and each sound card: guest memory, the I/O thread, its interrupt plumbing, the
// VM for ioeventfd/coalesced-MMIO registration, and memory slots.
#pragma once

#include <functional>
#include <string>

#include "xover/kvm/vm.hpp"
#include "xover/vmm/event_loop.hpp"
#include "xover/vmm/guest_memory.hpp"
#include "xover/vmm/interrupts.hpp"
#include "xover/vmm/memory_slots.hpp"
#include "xover/vmm/posted_writes.hpp"

namespace xover::vmm {

struct NicContext {
    std::string vm_name;
    unsigned index = 0;       // which --nic (or --sound) of this VM
    unsigned pci_slot = 0;    // where the device will sit (00:<slot>.0)
    GuestMemory& memory;
    EventLoop& loop;
    IrqLine& intx;            // INTA# of the slot, already routed (level, irqfd + resample)
    // The VM and its memory slots; null outside a KVM VM (the vhost-user
    // back-end serves a QEMU VM's queues: copy mode only, no window).
    kvm::Vm* vm;
    MemorySlots* memory_slots;  // the VM's, shared with its RAM
    // Creates (once per device) an MSI-X controller with `vectors` vectors;
    // owned by the machine, valid for the VM's lifetime.
    std::function<MsiController&(unsigned vectors)> make_msi;
    // Runs a function with every vCPU parked outside KVM_RUN (memory slot
    // swaps of the crossover window). Not from a vCPU thread. May be empty.
    std::function<void(const std::function<void()>&)> with_vcpus_paused = {};
    // Where doorbells a driver flushes may be posted. May be null.
    PostedWrites* posted_writes = nullptr;
};

}  // namespace xover::vmm
