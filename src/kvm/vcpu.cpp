#include "xover/kvm/vcpu.hpp"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <memory>

#include "flex_abi.hpp"
#include "xover/error.hpp"

namespace xover::kvm {

Vcpu::Vcpu(UniqueFd fd, unsigned id, std::size_t mmap_size) : fd_(std::move(fd)), id_(id), mmap_size_(mmap_size) {
    void* p = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (p == MAP_FAILED) throw system_error(fmt::format("mmap kvm_run of vCPU {}", id));
    run_ = static_cast<kvm_run*>(p);
}

Vcpu::~Vcpu() {
    if (run_) ::munmap(run_, mmap_size_);
}

Vcpu::Vcpu(Vcpu&& other) noexcept
    : fd_(std::move(other.fd_)), id_(other.id_), mmap_size_(other.mmap_size_), run_(std::exchange(other.run_, nullptr)) {}

int Vcpu::run() noexcept {
    if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) return -errno;
    return 0;
}

kvm_regs Vcpu::regs() const {
    kvm_regs r{};
    if (::ioctl(fd_.get(), KVM_GET_REGS, &r) < 0) throw system_error("KVM_GET_REGS");
    return r;
}

void Vcpu::set_regs(const kvm_regs& r) {
    if (::ioctl(fd_.get(), KVM_SET_REGS, &r) < 0) throw system_error("KVM_SET_REGS");
}

kvm_sregs Vcpu::sregs() const {
    kvm_sregs s{};
    if (::ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) throw system_error("KVM_GET_SREGS");
    return s;
}

void Vcpu::set_sregs(const kvm_sregs& s) {
    if (::ioctl(fd_.get(), KVM_SET_SREGS, &s) < 0) throw system_error("KVM_SET_SREGS");
}

void Vcpu::set_fpu(const kvm_fpu& fpu) {
    if (::ioctl(fd_.get(), KVM_SET_FPU, &fpu) < 0) throw system_error("KVM_SET_FPU");
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
    abi::Table<kvm_cpuid_entry2> table(std::uint32_t(entries.size()));
    for (std::size_t i = 0; i < entries.size(); ++i) table.set(i, entries[i]);
    if (::ioctl(fd_.get(), abi::kSetCpuid2, table.data()) < 0) throw system_error("KVM_SET_CPUID2");
}

void Vcpu::set_msrs(const std::vector<kvm_msr_entry>& msrs) {
    abi::Table<kvm_msr_entry> table(std::uint32_t(msrs.size()));
    for (std::size_t i = 0; i < msrs.size(); ++i) table.set(i, msrs[i]);
    int n = ::ioctl(fd_.get(), abi::kSetMsrs, table.data());
    if (n < 0) throw system_error("KVM_SET_MSRS");
    if (std::size_t(n) != msrs.size())
        throw Error("KVM_SET_MSRS: MSR {:#x} refused", msrs[std::size_t(n)].index);
}

kvm_mp_state Vcpu::mp_state() const {
    kvm_mp_state s{};
    if (::ioctl(fd_.get(), KVM_GET_MP_STATE, &s) < 0) throw system_error("KVM_GET_MP_STATE");
    return s;
}

void Vcpu::set_mp_state(std::uint32_t state) {
    kvm_mp_state s{};
    s.mp_state = state;
    if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &s) < 0) throw system_error("KVM_SET_MP_STATE");
}

}  // namespace xover::kvm
