#include "xover/vmm/kvm_interrupts.hpp"

#include <spdlog/spdlog.h>

namespace xover::vmm {

void KvmIrqLine::set_level(bool high) {
    if (!vm_.irq_line(gsi_, high)) spdlog::warn("KVM_IRQ_LINE {} failed", gsi_);
}

IrqfdLevelLine::IrqfdLevelLine(kvm::Vm& vm, EventLoop& loop, std::uint32_t gsi)
    : vm_(vm), loop_(loop), gsi_(gsi), trigger_(kvm::EventFd::create()), resample_(kvm::EventFd::create()) {
    vm_.add_irqfd(trigger_.fd(), gsi_, resample_.fd());
    loop_.watch(resample_.fd(), EventLoop::Interest::Readable, [this] { on_resample(); });
}

IrqfdLevelLine::~IrqfdLevelLine() {
    loop_.unwatch(resample_.fd(), EventLoop::Interest::Readable);
    try {
        vm_.remove_irqfd(trigger_.fd(), gsi_);
    } catch (const std::exception& e) {
        spdlog::debug("{}", e.what());
    }
}

void IrqfdLevelLine::set_level(bool high) {
    bool was = level_.exchange(high, std::memory_order_acq_rel);
    // Only a rising edge needs a write: while high, KVM keeps the line
    // asserted until EOI, and the resample path re-raises it after.
    if (high && !was) trigger_.signal();
}

void IrqfdLevelLine::on_resample() {
    resample_.drain();
    resamples_.fetch_add(1, std::memory_order_relaxed);
    if (level_.load(std::memory_order_acquire)) trigger_.signal();
}

KvmMsiController::KvmMsiController(kvm::Vm& vm, unsigned vectors) : vm_(vm) {
    vectors_.reserve(vectors);
    for (unsigned i = 0; i < vectors; ++i) {
        Vector v{vm_.allocate_gsi(), kvm::EventFd::create()};
        vm_.add_irqfd(v.fd.fd(), v.gsi);
        vectors_.push_back(std::move(v));
    }
}

KvmMsiController::~KvmMsiController() {
    for (auto& v : vectors_) {
        try {
            vm_.remove_irqfd(v.fd.fd(), v.gsi);
            if (v.programmed) vm_.remove_msi_route(v.gsi);
        } catch (const std::exception& e) {
            spdlog::debug("{}", e.what());
        }
    }
}

void KvmMsiController::program(unsigned vector, std::uint64_t address, std::uint32_t data) {
    if (vector >= vectors_.size()) {
        spdlog::warn("MSI vector {} out of range ({} vectors)", vector, vectors_.size());
        return;
    }
    Vector& v = vectors_[vector];
    if (v.programmed && v.address == address && v.data == data) return;
    try {
        vm_.set_msi_route(v.gsi, address, data);
        v.programmed = true;
        v.address = address;
        v.data = data;
    } catch (const std::exception& e) {
        spdlog::warn("MSI vector {}: {}", vector, e.what());
    }
}

void KvmMsiController::fire(unsigned vector) {
    if (vector < vectors_.size()) vectors_[vector].fd.signal();
}

int KvmMsiController::eventfd(unsigned vector) { return vector < vectors_.size() ? vectors_[vector].fd.fd() : -1; }

}  // namespace xover::vmm
