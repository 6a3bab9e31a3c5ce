// Test doubles for the virtio tests: an MSI controller that records what
// the device programs and fires, and a VirtioDriver that plays the guest
// driver through the device's PCI config space and BAR, so tests read like
// the spec's initialization sequence.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fake_guest_memory.hpp"
#include "fake_net.hpp"
#include "virtqueue_builder.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/virtio_net/virtio_pci_device.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/virtio_net/virtqueue.hpp"
#include "xover/vmm/interrupts.hpp"

namespace xover::test {

class FakeMsiController : public vmm::MsiController {
public:
    void program(unsigned vector, std::uint64_t address, std::uint32_t data) override {
        programmed[vector] = {address, data};
    }
    void fire(unsigned vector) override { fired.push_back(vector); }
    int eventfd(unsigned) override { return -1; }

    unsigned count(unsigned vector) const { return unsigned(std::count(fired.begin(), fired.end(), vector)); }

    std::map<unsigned, std::pair<std::uint64_t, std::uint32_t>> programmed;
    std::vector<unsigned> fired;
};

// Common-config offsets and status bits (virtio 1.2 §4.1.4.3, §2.1).
namespace vcfg {
constexpr std::uint64_t kDfSelect = 0, kDf = 4, kGfSelect = 8, kGf = 12, kMsix = 16, kNumQueues = 18, kStatus = 20,
                        kGeneration = 21, kQSelect = 22, kQSize = 24, kQMsix = 26, kQEnable = 28, kQNotifyOff = 30,
                        kQDesc = 32, kQAvail = 40, kQUsed = 48;
constexpr std::uint8_t kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 0x40, kFailed = 0x80;
}  // namespace vcfg

class VirtioDriver {
public:
    using Dev = virtio_net::VirtioPciDevice;

    explicit VirtioDriver(Dev& dev) : dev_(dev), bar_(*dev.bar(Dev::kBar).handler) {}

    // --- raw access ---
    std::uint64_t read(std::uint64_t offset, unsigned width) {
        std::uint8_t b[8] = {};
        bar_.read(offset, std::span(b, width));
        return vmm::load_le(std::span<const std::uint8_t>(b, width));
    }
    void write(std::uint64_t offset, unsigned width, std::uint64_t value) {
        std::uint8_t b[8] = {};
        vmm::store_le(std::span(b, width), value);
        bar_.write(offset, std::span<const std::uint8_t>(b, width));
    }
    std::uint32_t cfg_read(std::uint32_t offset, unsigned width) {
        std::uint8_t b[4] = {};
        dev_.config_read(offset, std::span(b, width));
        return std::uint32_t(vmm::load_le(std::span<const std::uint8_t>(b, width)));
    }
    void cfg_write(std::uint32_t offset, unsigned width, std::uint32_t value) {
        std::uint8_t b[4] = {};
        vmm::store_le(std::span(b, width), value);
        dev_.config_write(offset, std::span<const std::uint8_t>(b, width));
    }

    // --- common configuration ---
    std::uint64_t common(std::uint64_t field, unsigned width) { return read(Dev::kCommonOffset + field, width); }
    void set_common(std::uint64_t field, unsigned width, std::uint64_t v) { write(Dev::kCommonOffset + field, width, v); }
    std::uint8_t status() { return std::uint8_t(common(vcfg::kStatus, 1)); }
    void set_status(std::uint8_t s) { set_common(vcfg::kStatus, 1, s); }
    std::uint64_t device_features() {
        set_common(vcfg::kDfSelect, 4, 0);
        std::uint64_t lo = common(vcfg::kDf, 4);
        set_common(vcfg::kDfSelect, 4, 1);
        return lo | common(vcfg::kDf, 4) << 32;
    }
    void set_driver_features(std::uint64_t f) {
        set_common(vcfg::kGfSelect, 4, 0);
        set_common(vcfg::kGf, 4, f & 0xffffffff);
        set_common(vcfg::kGfSelect, 4, 1);
        set_common(vcfg::kGf, 4, f >> 32);
    }
    // Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. True if accepted.
    bool negotiate(std::uint64_t features) {
        set_status(0);
        set_status(vcfg::kAck);
        set_status(vcfg::kAck | vcfg::kDriver);
        set_driver_features(features);
        set_status(vcfg::kAck | vcfg::kDriver | vcfg::kFeaturesOk);
        return status() & vcfg::kFeaturesOk;
    }
    void setup_queue(std::uint16_t q, const virtio_net::VirtqueueLayout& l, std::uint16_t vector = Dev::kNoVector) {
        set_common(vcfg::kQSelect, 2, q);
        set_common(vcfg::kQSize, 2, l.size);
        set_common(vcfg::kQMsix, 2, vector);
        set_common(vcfg::kQDesc, 8, l.desc);  // as two 32-bit halves inside
        set_common(vcfg::kQAvail, 4, l.avail & 0xffffffff);
        set_common(vcfg::kQAvail + 4, 4, l.avail >> 32);
        set_common(vcfg::kQUsed, 4, l.used & 0xffffffff);
        set_common(vcfg::kQUsed + 4, 4, l.used >> 32);
        set_common(vcfg::kQEnable, 2, 1);
    }
    void driver_ok() { set_status(status() | vcfg::kDriverOk); }
    void notify(unsigned q) { write(Dev::kNotifyOffset + q * Dev::kNotifyMultiplier, 2, q); }
    std::uint8_t isr() { return std::uint8_t(read(Dev::kIsrOffset, 1)); }

    // --- PCI capabilities ---
    // Config offset of the first capability with `id` (and virtio
    // cfg_type, for vendor capabilities), or 0.
    std::uint8_t find_cap(std::uint8_t id, std::uint8_t cfg_type = 0) {
        for (std::uint8_t at = std::uint8_t(cfg_read(0x34, 1)); at != 0; at = std::uint8_t(cfg_read(at + 1, 1)))
            if (cfg_read(at, 1) == id && (cfg_type == 0 || cfg_read(at + 3, 1) == cfg_type)) return at;
        return 0;
    }
    void set_msix_control(bool enable, bool function_mask) {
        std::uint8_t cap = find_cap(0x11);
        cfg_write(cap + 2, 2, (enable ? 0x8000u : 0u) | (function_mask ? 0x4000u : 0u));
    }
    // Programs vector v with a recognisable message and unmasks it.
    void setup_vector(unsigned v) {
        std::uint64_t entry = Dev::kMsixTableOffset + 16ull * v;
        write(entry, 4, 0xfee00000 + v);
        write(entry + 4, 4, 0);
        write(entry + 8, 4, 0x40 + v);
        write(entry + 12, 4, 0);  // unmask
    }
    void mask_vector(unsigned v, bool masked) { write(Dev::kMsixTableOffset + 16ull * v + 12, 4, masked ? 1 : 0); }
    std::uint64_t pba() { return read(Dev::kMsixPbaOffset, 8); }

private:
    Dev& dev_;
    vmm::IoDevice& bar_;
};


// A virtio-net device with fake memory, interrupts and backend, and the
// driver side of both queues. bring_up() does what a guest driver does.
struct VirtioNetRig {
    static constexpr std::uint64_t kFeatures =
        (1ull << virtio_net::spec::kFeatureVersion1) | (1ull << virtio_net::spec::net::kFeatureMac) |
        (1ull << virtio_net::spec::net::kFeatureStatus) | (1ull << virtio_net::spec::net::kFeatureMrgRxbuf) |
        (1ull << virtio_net::spec::net::kFeatureCsum) | (1ull << virtio_net::spec::kFeatureEventIdx) |
        (1ull << virtio_net::spec::kFeatureIndirectDesc);

    FakeGuestMemory mem{4 << 20};
    FakeMsiController msi;
    FakeIrqLine intx;
    FakeBackend backend;
    virtio_net::VirtioNet net{mem, msi, intx, backend, *net::MacAddress::parse("52:54:00:12:34:56")};
    VirtioDriver drv{net};
    VirtqueueBuilder rx{mem, 0x10000, 16, 0x100000};
    VirtqueueBuilder tx{mem, 0x20000, 16, 0x200000};

    // MSI-X: vector 0 = rx, 1 = tx, 2 = config (when use_msix).
    void bring_up(std::uint64_t features = kFeatures, bool use_msix = true) {
        REQUIRE(drv.negotiate(features));
        if (use_msix) {
            drv.set_msix_control(true, false);
            for (unsigned v = 0; v < 3; ++v) drv.setup_vector(v);
            drv.set_common(vcfg::kMsix, 2, 2);
        }
        drv.setup_queue(0, rx.layout(), use_msix ? 0 : VirtioDriver::Dev::kNoVector);
        drv.setup_queue(1, tx.layout(), use_msix ? 1 : VirtioDriver::Dev::kNoVector);
        drv.driver_ok();
        REQUIRE(drv.status() == (vcfg::kAck | vcfg::kDriver | vcfg::kFeaturesOk | vcfg::kDriverOk));
    }

    std::uint64_t counter(const std::string& name) const {
        for (auto& [k, v] : net.counters())
            if (k == name) return v;
        FAIL("no counter " << name);
        return 0;
    }
    bool needs_reset() { return drv.status() & vcfg::kNeedsReset; }
    // The guest's MMIO notify of the TX queue.
    void queue_notify_tx() { drv.notify(1); }
};

}  // namespace xover::test
