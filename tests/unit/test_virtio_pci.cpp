// The modern virtio-pci transport as a guest driver sees it: PCI identity,
// the capability chain, common configuration (feature windows, status,
// queue registers), reset, MSI-X masking and pending bits, INTx fallback.
#include <catch2/catch.hpp>

#include "virtio_fakes.hpp"

using namespace xover::test;
using Dev = xover::virtio_net::VirtioPciDevice;
namespace spec = xover::virtio_net::spec;

namespace {
// A zeroed virtio_net_hdr_v1 followed by an n-byte frame.
std::string packet(std::size_t n, char fill) { return std::string(12, '\0') + std::string(n, fill); }
}  // namespace

TEST_CASE("virtio-pci identity and BAR", "[virtio][pci]") {
    VirtioNetRig r;
    CHECK(r.drv.cfg_read(0x00, 2) == 0x1af4);
    CHECK(r.drv.cfg_read(0x02, 2) == 0x1041);
    CHECK(r.drv.cfg_read(0x08, 1) == 1);  // revision: modern-only
    CHECK(r.drv.cfg_read(0x08, 4) >> 8 == 0x020000);
    CHECK(r.drv.cfg_read(0x2c, 2) == 0x1af4);
    CHECK(r.drv.cfg_read(0x3d, 1) == 1);  // INTA#
    CHECK(r.net.bar(Dev::kBar).kind == xover::vmm::PciBar::Kind::Mmio64);
    CHECK(r.net.bar(Dev::kBar).size == Dev::kBarSize);
    CHECK(r.net.notify_bar() == Dev::kBar);
    CHECK(r.net.notify_offset(0) == 0x3000);
    CHECK(r.net.notify_offset(1) == 0x3004);
}

TEST_CASE("virtio-pci capability chain", "[virtio][pci]") {
    VirtioNetRig r;
    CHECK(r.drv.cfg_read(0x06, 2) & 0x10);  // capability list present
    struct Expect {
        std::uint8_t type;
        std::uint32_t offset, length;
    };
    for (auto e : {Expect{1, 0x0000, 0x40}, Expect{2, 0x3000, 8}, Expect{3, 0x1000, 1}, Expect{4, 0x2000, 0x1000}}) {
        INFO("cfg_type " << int(e.type));
        std::uint8_t cap = r.drv.find_cap(0x09, e.type);
        REQUIRE(cap != 0);
        CHECK(cap % 4 == 0);
        CHECK(r.drv.cfg_read(cap + 2, 1) == (e.type == 2 ? 20u : 16u));  // cap_len
        CHECK(r.drv.cfg_read(cap + 4, 1) == Dev::kBar);
        CHECK(r.drv.cfg_read(cap + 8, 4) == e.offset);
        CHECK(r.drv.cfg_read(cap + 12, 4) == e.length);
        if (e.type == 2) CHECK(r.drv.cfg_read(cap + 16, 4) == Dev::kNotifyMultiplier);
    }
    std::uint8_t msix = r.drv.find_cap(0x11);
    REQUIRE(msix != 0);
    CHECK((r.drv.cfg_read(msix + 2, 2) & 0x7ff) == 2);  // 3 vectors
    CHECK(r.drv.cfg_read(msix + 4, 4) == (0x4000u | Dev::kBar));
    CHECK(r.drv.cfg_read(msix + 8, 4) == (0x5000u | Dev::kBar));
    // Only Enable / Function Mask are writable.
    r.drv.cfg_write(msix + 2, 2, 0xffff);
    CHECK(r.drv.cfg_read(msix + 2, 2) == 0xc002);
    r.drv.cfg_write(msix + 4, 4, 0);
    CHECK(r.drv.cfg_read(msix + 4, 4) == (0x4000u | Dev::kBar));
}

TEST_CASE("virtio-pci feature windows and FEATURES_OK", "[virtio][pci]") {
    VirtioNetRig r;
    std::uint64_t f = r.drv.device_features();
    CHECK(f >> spec::kFeatureVersion1 & 1);
    CHECK(f >> spec::kFeatureEventIdx & 1);
    CHECK(f >> spec::kFeatureIndirectDesc & 1);
    CHECK(f >> spec::net::kFeatureMac & 1);
    CHECK(f >> spec::net::kFeatureMrgRxbuf & 1);
    CHECK_FALSE(f >> spec::net::kFeatureHostTso4 & 1);  // no TSO: not implemented
    CHECK_FALSE(f >> spec::net::kFeatureGuestTso4 & 1);
    CHECK_FALSE(f >> spec::net::kFeatureCtrlVq & 1);
    r.drv.set_common(vcfg::kDfSelect, 4, 2);
    CHECK(r.drv.common(vcfg::kDf, 4) == 0);  // windows past 64 bits read 0
    CHECK(r.drv.common(vcfg::kDfSelect, 4) == 2);

    SECTION("accepts a subset with VERSION_1 and reads it back") {
        std::uint64_t want = (1ull << spec::kFeatureVersion1) | (1ull << spec::net::kFeatureMac);
        REQUIRE(r.drv.negotiate(want));
        r.drv.set_common(vcfg::kGfSelect, 4, 1);
        CHECK(r.drv.common(vcfg::kGf, 4) == 1);
        r.drv.set_common(vcfg::kGfSelect, 4, 0);
        CHECK(r.drv.common(vcfg::kGf, 4) == (1u << spec::net::kFeatureMac));
        CHECK(r.net.driver_features() == want);
        // Frozen after FEATURES_OK.
        r.drv.set_common(vcfg::kGf, 4, 0);
        CHECK(r.net.driver_features() == want);
    }
    SECTION("refuses features it did not offer") {
        CHECK_FALSE(r.drv.negotiate((1ull << spec::kFeatureVersion1) | (1ull << spec::net::kFeatureHostTso4)));
        // DRIVER_OK without FEATURES_OK does not start the device.
        r.drv.driver_ok();
        CHECK_FALSE(r.drv.status() & vcfg::kDriverOk);
    }
    SECTION("refuses a legacy driver (no VERSION_1)") {
        CHECK_FALSE(r.drv.negotiate(1ull << spec::net::kFeatureMac));
    }
}

TEST_CASE("virtio-pci queue registers", "[virtio][pci]") {
    VirtioNetRig r;
    CHECK(r.drv.common(vcfg::kNumQueues, 2) == 2);
    r.drv.set_common(vcfg::kQSelect, 2, 1);
    CHECK(r.drv.common(vcfg::kQSize, 2) == 256);
    CHECK(r.drv.common(vcfg::kQNotifyOff, 2) == 1);
    CHECK(r.drv.common(vcfg::kQMsix, 2) == Dev::kNoVector);
    r.drv.set_common(vcfg::kQSelect, 2, 7);
    CHECK(r.drv.common(vcfg::kQSize, 2) == 0);  // no such queue
    REQUIRE(r.drv.negotiate(VirtioNetRig::kFeatures));
    r.drv.setup_queue(1, r.tx.layout(), 1);
    r.drv.set_common(vcfg::kQSelect, 2, 1);
    CHECK(r.drv.common(vcfg::kQEnable, 2) == 1);
    CHECK(r.drv.common(vcfg::kQSize, 2) == 16);
    CHECK(r.drv.common(vcfg::kQDesc, 8) == r.tx.layout().desc);
    CHECK(r.drv.common(vcfg::kQAvail, 4) == r.tx.layout().avail);
    CHECK(r.drv.common(vcfg::kQUsed, 4) == r.tx.layout().used);
    CHECK(r.drv.common(vcfg::kQMsix, 2) == 1);
    // Frozen while enabled.
    r.drv.set_common(vcfg::kQSize, 2, 8);
    r.drv.set_common(vcfg::kQDesc, 4, 0x5000);
    CHECK(r.drv.common(vcfg::kQSize, 2) == 16);
    CHECK(r.drv.common(vcfg::kQDesc, 4) == r.tx.layout().desc);
    // A vector we do not have reads back as NO_VECTOR.
    r.drv.set_common(vcfg::kQMsix, 2, 9);
    CHECK(r.drv.common(vcfg::kQMsix, 2) == Dev::kNoVector);
    r.drv.set_common(vcfg::kMsix, 2, 3);
    CHECK(r.drv.common(vcfg::kMsix, 2) == Dev::kNoVector);
    r.drv.set_common(vcfg::kMsix, 2, 2);
    CHECK(r.drv.common(vcfg::kMsix, 2) == 2);

    SECTION("reset clears everything") {
        r.drv.set_status(0);
        CHECK(r.drv.status() == 0);
        CHECK(r.net.driver_features() == 0);
        CHECK(r.drv.common(vcfg::kMsix, 2) == Dev::kNoVector);
        CHECK(r.drv.common(vcfg::kQSelect, 2) == 0);
        r.drv.set_common(vcfg::kQSelect, 2, 1);
        CHECK(r.drv.common(vcfg::kQEnable, 2) == 0);
        CHECK(r.drv.common(vcfg::kQSize, 2) == 256);
        CHECK(r.drv.common(vcfg::kQDesc, 8) == 0);
    }
    SECTION("sub-width and odd accesses do not crash and are ignored") {
        r.drv.set_common(vcfg::kQSelect, 2, 0);
        r.drv.set_common(vcfg::kQDesc, 1, 0x77);  // wrong width
        r.drv.set_common(vcfg::kQDesc, 2, 0x77);
        CHECK(r.drv.common(vcfg::kQDesc, 4) == 0);
        CHECK(r.drv.common(vcfg::kQSize, 1) == 0);  // byte reads work
        CHECK(r.drv.common(vcfg::kQSize + 1, 1) == 1);
        r.drv.write(Dev::kCommonOffset + 0x3e, 4, 0xffffffff);  // straddles the end: ignored
        CHECK(r.drv.read(0x7ff8, 8) == 0);  // unused BAR space
        CHECK(r.counter("bad_register_accesses") >= 2);
    }
}

TEST_CASE("virtio-pci device configuration and config generation", "[virtio][pci]") {
    VirtioNetRig r;
    std::uint8_t mac[6];
    for (int i = 0; i < 6; ++i) mac[i] = std::uint8_t(r.drv.read(Dev::kDeviceOffset + i, 1));
    CHECK(mac[0] == 0x52);
    CHECK(mac[5] == 0x56);
    CHECK(r.drv.read(Dev::kDeviceOffset + 6, 2) == 1);  // LINK_UP
    CHECK(r.drv.read(Dev::kDeviceOffset + 8, 2) == 1);  // max_virtqueue_pairs
    r.bring_up();
    auto gen = r.drv.common(vcfg::kGeneration, 1);
    r.backend.link = false;
    r.net.link_changed();
    CHECK(r.drv.read(Dev::kDeviceOffset + 6, 2) == 0);
    CHECK(r.drv.common(vcfg::kGeneration, 1) == gen + 1);
    CHECK(r.msi.count(2) == 1);  // config vector
    CHECK(r.drv.isr() == spec::kIsrConfig);
    r.net.link_changed();  // no change: no interrupt
    CHECK(r.msi.count(2) == 1);
}

TEST_CASE("virtio-pci MSI-X table, masking and PBA", "[virtio][pci][msix]") {
    VirtioNetRig r;
    r.bring_up();
    CHECK(r.msi.programmed.at(1) == std::pair<std::uint64_t, std::uint32_t>{0xfee00001, 0x41});
    // Table reads back what was written; vector control only has bit 0.
    CHECK(r.drv.read(Dev::kMsixTableOffset + 16 + 8, 4) == 0x41);
    r.drv.write(Dev::kMsixTableOffset + 16 + 12, 4, 0xfffffffe);
    CHECK(r.drv.read(Dev::kMsixTableOffset + 16 + 12, 4) == 0);

    auto send_one = [&] {
        r.tx.add({r.tx.readable(packet(60, 'x'))});
        r.drv.notify(1);
    };
    send_one();
    CHECK(r.msi.count(1) == 1);

    SECTION("per-vector mask: pending bit, delivered on unmask") {
        r.drv.mask_vector(1, true);
        r.tx.set_used_event(r.tx.used_idx());  // ask for the next one
        send_one();
        CHECK(r.msi.count(1) == 1);
        CHECK(r.drv.pba() == 0b010);
        r.drv.mask_vector(1, false);
        CHECK(r.msi.count(1) == 2);
        CHECK(r.drv.pba() == 0);
    }
    SECTION("function mask") {
        r.drv.set_msix_control(true, true);
        r.tx.set_used_event(r.tx.used_idx());
        send_one();
        CHECK(r.msi.count(1) == 1);
        CHECK(r.drv.pba() == 0b010);
        r.drv.set_msix_control(true, false);
        CHECK(r.msi.count(1) == 2);
        CHECK(r.drv.pba() == 0);
    }
    SECTION("NO_VECTOR: no interrupt at all") {
        r.drv.set_common(vcfg::kQSelect, 2, 1);  // queue_msix_vector may change any time
        r.drv.set_common(vcfg::kQMsix, 2, Dev::kNoVector);
        r.tx.set_used_event(r.tx.used_idx());
        send_one();
        CHECK(r.msi.count(1) == 1);
        CHECK(r.drv.pba() == 0);
    }
    SECTION("writes to the PBA are ignored") {
        r.drv.write(Dev::kMsixPbaOffset, 8, ~0ull);
        CHECK(r.drv.pba() == 0);
    }
}

TEST_CASE("virtio-pci INTx fallback when MSI-X is disabled", "[virtio][pci][intx]") {
    VirtioNetRig r;
    r.bring_up(VirtioNetRig::kFeatures, /*use_msix=*/false);
    r.tx.add({r.tx.readable(packet(60, 'x'))});
    r.drv.notify(1);
    CHECK(r.intx.level);
    CHECK(r.msi.fired.empty());
    CHECK(r.drv.isr() == spec::kIsrQueue);  // read-to-clear ...
    CHECK_FALSE(r.intx.level);              // ... lowers the line
    CHECK(r.drv.isr() == 0);

    SECTION("COMMAND.INTx-disable keeps the line low") {
        r.drv.cfg_write(0x04, 2, 0x0406);  // memory, bus master, INTx disable
        r.tx.set_used_event(r.tx.used_idx());
        r.tx.add({r.tx.readable(packet(60, 'y'))});
        r.drv.notify(1);
        CHECK_FALSE(r.intx.level);
        r.drv.cfg_write(0x04, 2, 0x0006);  // enabling it raises the pending level
        CHECK(r.intx.level);
    }
}

TEST_CASE("virtio-pci VIRTIO_PCI_CAP_PCI_CFG window", "[virtio][pci]") {
    VirtioNetRig r;
    std::uint8_t cap = r.drv.find_cap(0x09, 5);
    REQUIRE(cap != 0);
    CHECK(r.drv.cfg_read(cap + 2, 1) == 20);
    // Read num_queues through the window.
    r.drv.cfg_write(cap + 4, 1, Dev::kBar);
    r.drv.cfg_write(cap + 12, 4, 2);
    r.drv.cfg_write(cap + 8, 4, Dev::kCommonOffset + vcfg::kNumQueues);
    CHECK(r.drv.cfg_read(cap + 16, 2) == 2);
    // Write device_status through it.
    r.drv.cfg_write(cap + 12, 4, 1);
    r.drv.cfg_write(cap + 8, 4, Dev::kCommonOffset + vcfg::kStatus);
    r.drv.cfg_write(cap + 16, 1, vcfg::kAck);
    CHECK(r.drv.status() == vcfg::kAck);
    // Nonsense windows are ignored.
    r.drv.cfg_write(cap + 12, 4, 3);
    r.drv.cfg_write(cap + 8, 4, 0xfffffffc);
    r.drv.cfg_write(cap + 16, 4, 0);
    CHECK(r.drv.status() == vcfg::kAck);
}

TEST_CASE("virtio-pci: a queue vector past the MSI-X table reads NO_VECTOR, a larger table takes it",
          "[virtio][pci][msix]") {
    FakeGuestMemory mem{1 << 20};
    FakeMsiController msi;
    FakeIrqLine intx;
    FakeBackend backend;
    const auto mac = *xover::net::MacAddress::parse("52:54:00:12:34:56");
    VirtqueueBuilder rx{mem, 0x10000, 16};
    auto vector_after_setup = [&](xover::virtio_net::VirtioNet& net) {
        VirtioDriver drv{net};
        REQUIRE(drv.negotiate(1ull << xover::virtio_net::spec::kFeatureVersion1));
        drv.setup_queue(0, rx.layout(), 4);
        drv.set_common(vcfg::kQSelect, 2, 0);
        return drv.common(vcfg::kQMsix, 2);
    };
    xover::virtio_net::VirtioNet standard{mem, msi, intx, backend, mac};
    CHECK(vector_after_setup(standard) == VirtioDriver::Dev::kNoVector);  // 3 vectors: 0..2
    // A vhost-user session moves a ring whose call fd changed to a spare vector.
    xover::virtio_net::VirtioNet spares{mem, msi, intx, backend, mac, 5};
    CHECK(vector_after_setup(spares) == 4);
}
