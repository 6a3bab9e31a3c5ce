#include "vhost_user_driver.hpp"

#include <sys/eventfd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "xover/byte_order.hpp"
#include "xover/error.hpp"

namespace xover::devices {

using virtio_net::VirtioPciDevice;

void ServedDevice::replace_memory(const std::function<void()>& replace) {
    model().run_locked(replace);
    model().remap_queues();
}

void ServedDevice::print_stats(std::FILE* out, bool all) const {
    vmm::StatsSnapshot snapshot;
    snapshot.groups.push_back(stats());
    std::fputs(vmm::stats_text(snapshot, all).c_str(), out);
}

void CallFdVectors::fire(unsigned vector) {
    if (vector < fds_.size() && fds_[vector] >= 0) (void)::eventfd_write(fds_[vector], 1);
}

RegisterDriver::RegisterDriver(VirtioPciDevice& device)
    : device_(device), bar_(*device.bar(VirtioPciDevice::kBar).handler) {}

void RegisterDriver::start(std::uint64_t features, std::span<const ServedRing> rings, unsigned vectors) {
    write_status(0);  // reset
    write_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    for (unsigned half = 0; half < 2; ++half) {
        write(VIRTIO_PCI_COMMON_GFSELECT, half, 4);
        write(VIRTIO_PCI_COMMON_GF, std::uint32_t(features >> (32 * half)), 4);
    }
    write_status(status() | VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(status() & VIRTIO_CONFIG_S_FEATURES_OK))
        throw Error("the device refused the front-end's features {:#x}", features);
    enable_msix(vectors);
    write(VIRTIO_PCI_COMMON_MSIX, CallFdVectors::kConfig, 2);
    for (unsigned q = 0; q < rings.size(); ++q) {
        const ServedRing& r = rings[q];
        write(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
        write(VIRTIO_PCI_COMMON_Q_SIZE, r.size, 2);
        write(VIRTIO_PCI_COMMON_Q_MSIX, CallFdVectors::first_vector(q), 2);
        write(VIRTIO_PCI_COMMON_Q_DESCLO, r.desc, 8);
        write(VIRTIO_PCI_COMMON_Q_AVAILLO, r.avail, 8);
        write(VIRTIO_PCI_COMMON_Q_USEDLO, r.used, 8);
        write(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
        if (status() & VIRTIO_CONFIG_S_NEEDS_RESET)
            throw Error("the device refused ring {} (size {}, desc {:#x}, avail {:#x}, used {:#x})", q, r.size, r.desc,
                        r.avail, r.used);
        device_.start_queue_at(q, r.base);
    }
    write_status(status() | VIRTIO_CONFIG_S_DRIVER_OK);
    if (!(status() & VIRTIO_CONFIG_S_DRIVER_OK) || (status() & VIRTIO_CONFIG_S_NEEDS_RESET))
        throw Error("the device did not start: a ring is malformed (virtio status {:#x}: DEVICE_NEEDS_RESET)",
                    status());
}

void RegisterDriver::set_ring_vector(unsigned q, unsigned vector) {
    write(VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
    write(VIRTIO_PCI_COMMON_Q_MSIX, vector, 2);
}

void RegisterDriver::write(std::uint64_t offset, std::uint64_t value, unsigned width) {
    std::uint8_t bytes[8] = {};
    store_le(std::span(bytes, width), value);
    bar_.write(VirtioPciDevice::kCommonOffset + offset, std::span<const std::uint8_t>(bytes, width));
}

std::uint8_t RegisterDriver::status() {
    std::uint8_t value = 0;
    bar_.read(VirtioPciDevice::kCommonOffset + VIRTIO_PCI_COMMON_STATUS, std::span(&value, 1));
    return value;
}

void RegisterDriver::write_status(std::uint8_t value) { write(VIRTIO_PCI_COMMON_STATUS, value, 1); }

// MSI-X on (the capability's enable bit) and every vector unmasked (table
// entries reset masked), as a driver that requests vectors does.
void RegisterDriver::enable_msix(unsigned vectors) {
    constexpr std::uint8_t kCapMsix = 0x11;
    constexpr std::uint16_t kMsixEnable = 1 << 15;
    std::uint8_t next = 0;
    device_.config_read(0x34, std::span(&next, 1));
    for (unsigned hops = 0; next != 0 && hops < 48; ++hops) {
        std::uint8_t header[2] = {};
        device_.config_read(next, header);
        if (header[0] == kCapMsix) {
            std::uint8_t control[2] = {};
            store_le(control, kMsixEnable);
            device_.config_write(next + 2u, control);
            break;
        }
        next = header[1];
    }
    for (unsigned v = 0; v < vectors; ++v) {
        std::uint8_t entry[16] = {};
        store_le(std::span(entry, 4), 0xfee00000u);  // any address: CallFdVectors ignores it
        store_le(std::span(entry + 8, 4), v);
        bar_.write(VirtioPciDevice::kMsixTableOffset + 16u * v, entry);
    }
}

}  // namespace xover::devices
