// /dev/kvm: opened once per process, checked for the API version and every
// capability xover relies on, so a missing feature fails at start-up with a
// message instead of surfacing later as a strange guest hang.
#pragma once

#include <linux/kvm.h>

#include <vector>

#include "xover/kvm/unique_fd.hpp"
#include "xover/kvm/vm.hpp"

namespace xover::kvm {

class System {
public:
    // Throws xover::Error naming the fix (load the module, join the kvm
    // group, run as root) when /dev/kvm is missing or not accessible.
    static System open(const char* path = "/dev/kvm");

    int fd() const { return fd_.get(); }
    // KVM_CHECK_EXTENSION: 0 when unsupported, otherwise a capability value.
    int check_extension(long capability) const;
    int vcpu_mmap_size() const { return vcpu_mmap_size_; }
    // KVM_GET_SUPPORTED_CPUID: what the host can give a guest.
    std::vector<kvm_cpuid_entry2> supported_cpuid() const;
    Vm create_vm() const;

private:
    System(UniqueFd fd, int vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}
    UniqueFd fd_;
    int vcpu_mmap_size_ = 0;
};

}  // namespace xover::kvm
