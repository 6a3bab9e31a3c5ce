#include "xover/kvm/system.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <memory>

#include "flex_abi.hpp"
#include "xover/error.hpp"

namespace xover::kvm {

namespace {

struct RequiredCapability {
    long id;
    const char* name;
};

// What the machine cannot work without (see DESIGN.md §4).
constexpr RequiredCapability kRequired[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP (in-kernel PIC/IOAPIC/LAPIC)"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IRQFD_RESAMPLE, "KVM_CAP_IRQFD_RESAMPLE (level-triggered INTx)"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_COALESCED_MMIO, "KVM_CAP_COALESCED_MMIO"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

}  // namespace

System System::open(const char* path) {
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            throw Error("cannot open {}: no such device; load the kvm module (modprobe kvm_intel or kvm_amd)",
                        path);
        if (err == EACCES || err == EPERM)
            throw Error("cannot open {}: permission denied; add your user to the kvm group or run as root",
                        path);
        throw Error("cannot open {}: {}; load the kvm module / add user to kvm group / run as root", path,
                    std::strerror(err));
    }
    UniqueFd owned(fd);
    int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        throw Error("{}: KVM API version {} (xover needs {})", path, version, KVM_API_VERSION);
    for (const auto& cap : kRequired) {
        if (::ioctl(fd, KVM_CHECK_EXTENSION, cap.id) <= 0)
            throw Error("{}: the host KVM lacks {}, which xover requires", path, cap.name);
    }
    int mmap_size = ::ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0) throw system_error("KVM_GET_VCPU_MMAP_SIZE");
    return System(std::move(owned), mmap_size);
}

int System::check_extension(long capability) const {
    int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
    return r < 0 ? 0 : r;
}

std::vector<kvm_cpuid_entry2> System::supported_cpuid() const {
    // Grow the table until the kernel stops answering E2BIG.
    for (std::uint32_t count = 64; count <= 4096; count *= 2) {
        abi::Table<kvm_cpuid_entry2> table(count);
        if (::ioctl(fd_.get(), abi::kGetSupportedCpuid, table.data()) == 0) {
            std::vector<kvm_cpuid_entry2> out;
            for (std::uint32_t i = 0; i < table.count(); ++i) out.push_back(table.get(i));
            return out;
        }
        if (errno != E2BIG) throw system_error("KVM_GET_SUPPORTED_CPUID");
    }
    throw Error("KVM_GET_SUPPORTED_CPUID: too many entries");
}

Vm System::create_vm() const {
    int fd = -1;
    // KVM_CREATE_VM can fail transiently with EINTR.
    do {
        fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw system_error("KVM_CREATE_VM");
    return Vm(UniqueFd(fd), vcpu_mmap_size_);
}

}  // namespace xover::kvm
