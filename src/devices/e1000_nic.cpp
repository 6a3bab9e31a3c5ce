// An e1000 NIC as the machine gets it: the model, its backend, the
// timerfd behind its interrupt delays and, with a crossover, its DMA
// window (window mode) and crossover attachment.
#include <unistd.h>

#include "deadline_timer.hpp"
#include "nic_backend.hpp"
#include "nic_crossover.hpp"
#include "nic_setup.hpp"
#include "posted_register.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/error.hpp"
#include "xover/vmm/kvm_interrupts.hpp"

namespace xover::devices {

namespace {

class E1000Nic final : private BackendOwner, public e1000::E1000 {
public:
    E1000Nic(const NicSetup& setup, vmm::NicContext& context)
        : BackendOwner(setup, context),
          E1000(context.memory, context.intx, *backend, setup.mac, setup.name),
          loop_(context.loop),
          timer_(make_deadline_timer("the e1000 interrupt timer")) {
        int fd = timer_.get();
        // ITR throttling and the RX/TX interrupt delays: one absolute-time
        // timerfd, re-armed by the device, fired on the I/O thread.
        set_interrupt_timer({monotonic_ns, [fd](std::uint64_t deadline) { arm_deadline(fd, deadline); }});
        loop_.watch(fd, vmm::EventLoop::Interest::Readable, [this, fd] {
            std::uint64_t expirations;
            if (::read(fd, &expirations, sizeof expirations) > 0) on_timer();
        });
        if (!setup.config.crossover.empty()) {
            auto* line = dynamic_cast<vmm::IrqfdLevelLine*>(&context.intx);
            if (!line) throw Error("--nic e1000: crossover needs an irqfd INTx line");
            // Peers write the INTx trigger eventfd: the line goes up
            // without an exit; the guest's EOI (resample) lowers it.
            crossover_ = std::make_unique<NicCrossover<e1000::E1000>>(
                *this, setup, context, *backend, line->trigger_fd(), -1, kWindowBar,
                [this](unsigned index, const vmm::PciBar& bar) { define_bar(index, bar); });
        }
        if (context.posted_writes) {
            rdt_ = std::make_unique<PostedRegister>(*context.posted_writes, *this, kMmioBar, e1000::reg::RDT,
                                                    [this] { rdt_posting_stale(); });
            set_rdt_posting([this](bool post) { rdt_->set_posted(post); });
        }
        start_backend(*backend, context.loop, *this, crossover_.get());
    }
    ~E1000Nic() override {
        set_rdt_posting({});
        rdt_.reset();
        crossover_.reset();
        stop_backend();
        loop_.unwatch(timer_.get(), vmm::EventLoop::Interest::Readable);
    }

    // The window is RAM for the guest (memory slots), not MMIO: its BAR
    // has no handler, so the bus leaves it alone; the slots follow it here.
    // A posted RDT follows BAR0 too.
    void bars_mapped() override {
        if (crossover_) crossover_->bars_mapped(*this);
        if (rdt_) rdt_->bars_mapped();
    }

private:
    // BAR2: the crossover DMA window (32-bit memory, 2 MiB), BAR3 its ring
    // area (64 KiB). The 82540EM has only BAR0 (MMIO) and BAR1 (I/O);
    // drivers ignore the others.
    static constexpr unsigned kWindowBar = 2;

    vmm::EventLoop& loop_;
    kvm::UniqueFd timer_;
    std::unique_ptr<NicCrossover<e1000::E1000>> crossover_;
    std::unique_ptr<PostedRegister> rdt_;  // with posted writes: RDT, once the driver flushes it
};

}  // namespace

std::unique_ptr<vmm::PciDevice> make_e1000_nic(const NicSetup& setup, vmm::NicContext& context) {
    return std::make_unique<E1000Nic>(setup, context);
}

}  // namespace xover::devices
