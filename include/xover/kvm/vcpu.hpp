// A KVM vCPU fd with its mmap'd kvm_run area.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xover/kvm/unique_fd.hpp"

namespace xover::kvm {

class Vcpu {
public:
    Vcpu(UniqueFd fd, unsigned id, std::size_t mmap_size);
    ~Vcpu();
    Vcpu(Vcpu&& other) noexcept;
    Vcpu& operator=(Vcpu&&) = delete;
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;

    unsigned id() const { return id_; }
    int fd() const { return fd_.get(); }
    kvm_run& run_state() { return *run_; }
    // The whole kvm_run mapping (it also holds the coalesced-MMIO ring).
    std::size_t mmap_size() const { return mmap_size_; }

    // KVM_RUN. Returns 0 on an exit to handle, or -errno (EINTR, EAGAIN
    // when a signal or immediate_exit interrupted it). Never throws.
    int run() noexcept;
    // Makes the next (or current, with a signal) KVM_RUN return at once.
    void set_immediate_exit(bool on) noexcept { run_->immediate_exit = on ? 1 : 0; }

    kvm_regs regs() const;
    void set_regs(const kvm_regs& regs);
    kvm_sregs sregs() const;
    void set_sregs(const kvm_sregs& sregs);
    void set_fpu(const kvm_fpu& fpu);
    void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
    void set_msrs(const std::vector<kvm_msr_entry>& msrs);
    kvm_mp_state mp_state() const;
    void set_mp_state(std::uint32_t state);

private:
    UniqueFd fd_;
    unsigned id_ = 0;
    std::size_t mmap_size_ = 0;
    kvm_run* run_ = nullptr;
};

}  // namespace xover::kvm
