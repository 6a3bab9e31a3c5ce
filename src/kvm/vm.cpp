#include "xover/kvm/vm.hpp"

#include <sys/ioctl.h>

#include <memory>
#include <vector>

#include "flex_abi.hpp"
#include "xover/error.hpp"

namespace xover::kvm {

Vm::Vm(UniqueFd fd, int vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

Vm::Vm(Vm&& other) noexcept
    : fd_(std::move(other.fd_)),
      vcpu_mmap_size_(other.vcpu_mmap_size_),
      msi_routes_(std::move(other.msi_routes_)),
      next_gsi_(other.next_gsi_) {}

void Vm::set_tss_addr(std::uint64_t gpa) {
    if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(gpa)) < 0)
        throw system_error("KVM_SET_TSS_ADDR");
}

void Vm::set_identity_map_addr(std::uint64_t gpa) {
    std::uint64_t addr = gpa;
    if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
        throw system_error("KVM_SET_IDENTITY_MAP_ADDR");
}

void Vm::create_irqchip() {
    if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) throw system_error("KVM_CREATE_IRQCHIP");
    // Start from a known table: the irqchip routes and no MSI routes.
    std::lock_guard lock(routes_mutex_);
    commit_routes_locked();
}

void Vm::create_pit() {
    kvm_pit_config config{};
    // The kernel also answers port 0x61 (the channel 2 gate Linux uses to
    // calibrate the TSC against the PIT), so no exit reaches userspace.
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) throw system_error("KVM_CREATE_PIT2");
}

Vcpu Vm::create_vcpu(unsigned id) {
    int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) throw system_error(fmt::format("KVM_CREATE_VCPU {}", id));
    return Vcpu(UniqueFd(fd), id, std::size_t(vcpu_mmap_size_));
}

bool Vm::follows_host_mappings() const { return ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, KVM_CAP_SYNC_MMU) > 0; }

void Vm::set_memory_region(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size, void* host,
                           std::uint32_t flags) {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = flags;
    region.guest_phys_addr = gpa;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(host);
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        throw system_error(fmt::format("KVM_SET_USER_MEMORY_REGION slot {} gpa {:#x} size {:#x}", slot, gpa,
                                       size));
}

void Vm::add_irqfd(int fd, std::uint32_t gsi, std::optional<int> resample_fd) {
    kvm_irqfd request{};
    request.fd = std::uint32_t(fd);
    request.gsi = gsi;
    if (resample_fd) {
        request.flags = KVM_IRQFD_FLAG_RESAMPLE;
        request.resamplefd = std::uint32_t(*resample_fd);
    }
    if (::ioctl(fd_.get(), KVM_IRQFD, &request) < 0) throw system_error(fmt::format("KVM_IRQFD gsi {}", gsi));
}

void Vm::remove_irqfd(int fd, std::uint32_t gsi) {
    kvm_irqfd request{};
    request.fd = std::uint32_t(fd);
    request.gsi = gsi;
    request.flags = KVM_IRQFD_FLAG_DEASSIGN;
    if (::ioctl(fd_.get(), KVM_IRQFD, &request) < 0)
        throw system_error(fmt::format("KVM_IRQFD deassign gsi {}", gsi));
}

namespace {
kvm_ioeventfd make_ioeventfd(int fd, std::uint64_t address, std::uint32_t length, bool pio,
                             std::optional<std::uint64_t> datamatch) {
    kvm_ioeventfd request{};
    request.fd = fd;
    request.addr = address;
    request.len = length;
    if (pio) request.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch) {
        request.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        request.datamatch = *datamatch;
    }
    return request;
}
}  // namespace

void Vm::add_ioeventfd(int fd, std::uint64_t address, std::uint32_t length, bool pio,
                       std::optional<std::uint64_t> datamatch) {
    auto request = make_ioeventfd(fd, address, length, pio, datamatch);
    if (::ioctl(fd_.get(), KVM_IOEVENTFD, &request) < 0)
        throw system_error(fmt::format("KVM_IOEVENTFD {} {:#x}/{}", pio ? "port" : "mmio", address, length));
}

void Vm::remove_ioeventfd(int fd, std::uint64_t address, std::uint32_t length, bool pio,
                          std::optional<std::uint64_t> datamatch) {
    auto request = make_ioeventfd(fd, address, length, pio, datamatch);
    request.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    if (::ioctl(fd_.get(), KVM_IOEVENTFD, &request) < 0)
        throw system_error(fmt::format("KVM_IOEVENTFD deassign {:#x}", address));
}

void Vm::register_coalesced(std::uint64_t address, std::uint32_t size, bool pio) {
    coalesced_zone(KVM_REGISTER_COALESCED_MMIO, "KVM_REGISTER_COALESCED_MMIO", address, size, pio);
}

void Vm::unregister_coalesced(std::uint64_t address, std::uint32_t size, bool pio) {
    coalesced_zone(KVM_UNREGISTER_COALESCED_MMIO, "KVM_UNREGISTER_COALESCED_MMIO", address, size, pio);
}

void Vm::coalesced_zone(unsigned long request, const char* what, std::uint64_t address, std::uint32_t size,
                        bool pio) {
    kvm_coalesced_mmio_zone zone{};
    zone.addr = address;
    zone.size = size;
    zone.pio = pio ? 1 : 0;
    if (::ioctl(fd_.get(), request, &zone) < 0) throw system_error(fmt::format("{} {:#x}/{}", what, address, size));
}

bool Vm::irq_line(std::uint32_t irq, bool level) noexcept {
    kvm_irq_level request{};
    request.irq = irq;
    request.level = level ? 1 : 0;
    return ::ioctl(fd_.get(), KVM_IRQ_LINE, &request) == 0;
}

bool Vm::signal_msi(std::uint64_t address, std::uint32_t data) noexcept {
    kvm_msi msi{};
    msi.address_lo = std::uint32_t(address);
    msi.address_hi = std::uint32_t(address >> 32);
    msi.data = data;
    // > 0: delivered, 0: blocked by the guest (masked), < 0: error.
    return ::ioctl(fd_.get(), KVM_SIGNAL_MSI, &msi) >= 0;
}

std::uint32_t Vm::allocate_gsi() {
    std::lock_guard lock(routes_mutex_);
    return next_gsi_++;
}

void Vm::set_msi_route(std::uint32_t gsi, std::uint64_t address, std::uint32_t data) {
    std::lock_guard lock(routes_mutex_);
    msi_routes_[gsi] = MsiRoute{address, data};
    commit_routes_locked();
}

void Vm::remove_msi_route(std::uint32_t gsi) {
    std::lock_guard lock(routes_mutex_);
    if (msi_routes_.erase(gsi)) commit_routes_locked();
}

void Vm::commit_routes_locked() {
    // Irqchip routes as KVM sets them by default: GSI 0..15 to the PICs,
    // 0..23 to the IOAPIC pin of the same number; then the MSI routes.
    std::vector<kvm_irq_routing_entry> entries;
    for (std::uint32_t gsi = 0; gsi < kIrqchipGsis; ++gsi) {
        if (gsi < 16) {
            kvm_irq_routing_entry pic{};
            pic.gsi = gsi;
            pic.type = KVM_IRQ_ROUTING_IRQCHIP;
            pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            pic.u.irqchip.pin = gsi % 8;
            entries.push_back(pic);
        }
        kvm_irq_routing_entry ioapic{};
        ioapic.gsi = gsi;
        ioapic.type = KVM_IRQ_ROUTING_IRQCHIP;
        ioapic.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        ioapic.u.irqchip.pin = gsi;
        entries.push_back(ioapic);
    }
    for (const auto& [gsi, route] : msi_routes_) {
        kvm_irq_routing_entry msi{};
        msi.gsi = gsi;
        msi.type = KVM_IRQ_ROUTING_MSI;
        msi.u.msi.address_lo = std::uint32_t(route.address);
        msi.u.msi.address_hi = std::uint32_t(route.address >> 32);
        msi.u.msi.data = route.data;
        entries.push_back(msi);
    }
    abi::Table<kvm_irq_routing_entry> table(std::uint32_t(entries.size()));
    for (std::size_t i = 0; i < entries.size(); ++i) table.set(i, entries[i]);
    if (::ioctl(fd_.get(), abi::kSetGsiRouting, table.data()) < 0) throw system_error("KVM_SET_GSI_ROUTING");
}

}  // namespace xover::kvm
