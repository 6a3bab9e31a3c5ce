// xover's virtio-net on an external vhost-user back-end (backend=vhost-user:PATH),
// without KVM: the device is driven through its PCI registers as a guest
// driver would, on real memfd RAM, and its back-end is a real `xover
// vhost-user` process whose NIC sends over UDP. Frames cross both ways
// through the rings the back-end reads and writes in our memory; the
// back-end's calls become the queues' MSI-X interrupts; a back-end that
// dies and comes back gets the rings again where they were.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include "temp_dir.hpp"
#include "test_net_support.hpp"
#include "virtio_fakes.hpp"
#include "xover/devices/device_manager.hpp"
#include "xover/vhost_user/frontend.hpp"
#include "xover/vmm/ram_memory.hpp"

extern char** environ;

namespace {

using namespace xover;
using xover::test::TempDir;
using xover::test::VirtioDriver;
namespace vcfg = xover::test::vcfg;

// Interrupts per vector: fired from the I/O thread (`fired`), or
// signalled on the vector's eventfd, which in a VM is its irqfd (the
// back-end's calls while the vector is deliverable; `signalled` reads it).
class CountingMsi : public vmm::MsiController {
public:
    CountingMsi() {
        for (auto& fd : fds) fd = kvm::EventFd::create();
    }
    void program(unsigned, std::uint64_t, std::uint32_t) override {}
    void fire(unsigned vector) override {
        if (vector < fired.size()) ++fired[vector];
    }
    int eventfd(unsigned vector) override { return vector < fds.size() ? fds[vector].fd() : -1; }
    // How many signals the vector's eventfd collected since the last call.
    std::uint64_t signalled(unsigned vector) {
        std::uint64_t n = 0;
        return ::read(fds[vector].fd(), &n, sizeof n) == sizeof n ? n : 0;
    }
    std::array<std::atomic<int>, 4> fired{};
    std::array<kvm::EventFd, 4> fds;
};

class NoIntx : public vmm::IrqLine {
public:
    void set_level(bool) override {}
};

// A UDP socket on a free local port.
struct UdpPort {
    kvm::UniqueFd fd{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    std::uint16_t port = 0;
    UdpPort() {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
};

// `xover vhost-user` as a child process, serving `socket` with a udp backend.
struct Backend {
    pid_t pid = -1;
    Backend(const std::filesystem::path& socket, std::uint16_t local, std::uint16_t remote) {
        auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "xover";
        std::string nic = "virtio-net,mac=52:54:00:7c:00:02,backend=udp:" + std::to_string(local) +
                          "@127.0.0.1:" + std::to_string(remote);
        std::vector<std::string> args{exe.string(), "vhost-user", "--socket", socket.string(), "--name", "fe-peer",
                                      "--nic",      nic,          "--log-level", "warn"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
        // Listening, not just bound: the file exists from bind() on, and a
        // connect before listen() is refused. (The back-end takes the probe
        // as a session that ended, and serves the next connection.)
        REQUIRE(xover::test::wait_until([&] { return accepts_connections(socket); }));
    }
    static bool accepts_connections(const std::filesystem::path& socket) {
        if (!std::filesystem::exists(socket)) return false;
        try {
            return bool(vhost_user::Frontend::connect(socket));
        } catch (const std::exception&) {
            return false;
        }
    }
    void kill() {
        if (pid <= 0) return;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    ~Backend() { kill(); }
};

// The driver's half of one split ring in RAM, by hand.
struct Ring {
    vmm::GuestMemory& mem;
    std::uint64_t desc, avail, used, buffers;
    std::uint16_t size = 16, next = 0;
    virtio_net::VirtqueueLayout layout() const { return {size, desc, avail, used}; }
    void add(std::uint64_t addr, std::uint32_t len, bool writable) {
        std::uint16_t slot = next % size;
        struct {
            std::uint64_t addr;
            std::uint32_t len;
            std::uint16_t flags, next;
        } d{addr, len, std::uint16_t(writable ? virtio_net::spec::kDescWrite : 0), 0};
        REQUIRE(mem.write(desc + 16ull * slot, d));
        REQUIRE(mem.write(avail + 4 + 2ull * slot, slot));
        ++next;
        REQUIRE(mem.write(avail + 2, next));
    }
    std::uint16_t used_idx() {
        std::uint16_t v = 0;
        mem.read(used + 2, v);
        return v;
    }
};

// One guest's virtio-net on backend=vhost-user:SOCKET, brought up by its
// driver: RAM, I/O thread, interrupts, both rings.
struct FrontendRig {
    vmm::RamMemory ram{16 << 20};
    xover::test::LoopThread io;
    CountingMsi msi;
    NoIntx intx;
    vmm::VmConfig config;
    vmm::NicConfig nic;
    std::unique_ptr<devices::DeviceManager> manager;
    std::unique_ptr<vmm::PciDevice> device;
    std::unique_ptr<VirtioDriver> drv;
    Ring rx{ram, 0x10000, 0x10100, 0x11000, 0x100000};
    Ring tx{ram, 0x20000, 0x20100, 0x21000, 0x200000};

    FrontendRig(const std::string& name, const std::filesystem::path& socket, const std::string& mac,
                bool server = false) {
        config.name = name;
        config.broker = socket.parent_path() / "unused.sock";
        nic.model = vmm::NicModel::VirtioNet;
        nic.mac = *net::MacAddress::parse(mac);
        nic.backend = net::VhostUserSpec{socket.string(), server};
        config.nics.push_back(nic);
        manager = std::make_unique<devices::DeviceManager>(config);
        vmm::NicContext context{.vm_name = name,
                                .index = 0,
                                .pci_slot = 3,
                                .memory = ram,
                                .loop = io.loop(),
                                .intx = intx,
                                .vm = nullptr,
                                .memory_slots = nullptr,
                                .make_msi = [this](unsigned) -> vmm::MsiController& { return msi; }};
        device = manager->make_nic(nic, context);
        auto* virtio = dynamic_cast<virtio_net::VirtioPciDevice*>(device.get());
        REQUIRE(virtio);
        drv = std::make_unique<VirtioDriver>(*virtio);
    }
    ~FrontendRig() { device.reset(); }

    void bring_up() {
        const std::uint64_t features = (1ull << virtio_net::spec::kFeatureVersion1) |
                                       (1ull << virtio_net::spec::net::kFeatureMac) |
                                       (1ull << virtio_net::spec::net::kFeatureMrgRxbuf);
        REQUIRE((drv->device_features() & features) == features);
        REQUIRE(drv->negotiate(features));
        drv->set_msix_control(true, false);
        for (unsigned v = 0; v < 3; ++v) drv->setup_vector(v);
        drv->set_common(vcfg::kMsix, 2, 2);
        drv->setup_queue(0, rx.layout(), 0);
        drv->setup_queue(1, tx.layout(), 1);
        drv->driver_ok();
        REQUIRE(drv->status() == (vcfg::kAck | vcfg::kDriver | vcfg::kFeaturesOk | vcfg::kDriverOk));
    }
    bool link_up() { return (drv->read(virtio_net::VirtioPciDevice::kDeviceOffset + 6, 2) & 1) == 1; }
    // Queues a 60-byte frame (after its 12-byte virtio header) and notifies.
    std::array<std::uint8_t, 60> transmit(std::uint8_t tag) {
        std::array<std::uint8_t, 12 + 60> buf{};
        for (std::size_t i = 12; i < buf.size(); ++i) buf[i] = std::uint8_t(tag + i);
        std::uint64_t at = tx.buffers + 0x1000ull * (tx.next % tx.size);
        REQUIRE(ram.write(at, buf));
        tx.add(at, buf.size(), false);
        drv->notify(1);
        std::array<std::uint8_t, 60> frame{};
        std::memcpy(frame.data(), buf.data() + 12, 60);
        return frame;
    }
    void post_rx_buffers(unsigned n) {
        for (unsigned i = 0; i < n; ++i) rx.add(rx.buffers + 0x1000ull * (rx.next % rx.size), 2048, true);
        drv->notify(0);
    }
    std::array<std::uint8_t, 60> received(std::uint16_t used) {
        std::array<std::uint8_t, 60> placed{};
        REQUIRE(ram.read(rx.buffers + 0x1000ull * ((used - 1) % rx.size) + 12, placed));
        return placed;
    }
};

}  // namespace

TEST_CASE("a virtio-net NIC on a vhost-user back-end moves frames both ways and survives the back-end's restart",
          "[vhost-user][frontend]") {
    auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "xover";
    if (!std::filesystem::exists(exe)) FAIL("no xover binary next to the test binary");
    TempDir dir;
    auto socket = dir.path / "be.sock";
    UdpPort ours, theirs_probe;
    std::uint16_t theirs = theirs_probe.port;
    theirs_probe.fd.reset();  // the back-end binds it
    auto backend = std::make_unique<Backend>(socket, theirs, ours.port);
    FrontendRig fe("fe", socket, "52:54:00:7c:00:01");
    fe.bring_up();
    CHECK(fe.link_up());

    auto send_frame = [&](std::uint8_t tag) {
        auto frame = fe.transmit(tag);
        std::array<std::uint8_t, 2048> got{};
        pollfd p{ours.fd.get(), POLLIN, 0};
        REQUIRE(::poll(&p, 1, 5000) == 1);
        ssize_t n = ::recv(ours.fd.get(), got.data(), got.size(), 0);
        REQUIRE(n == 60);
        CHECK(std::memcmp(got.data(), frame.data(), 60) == 0);
    };

    // TX: the guest's frame leaves through the back-end's UDP socket.
    send_frame(1);
    REQUIRE(xover::test::wait_until([&] { return fe.tx.used_idx() == 1; }));

    // RX: a frame to the back-end lands in our RX ring, with an interrupt.
    fe.post_rx_buffers(4);
    auto receive_frame = [&](std::uint8_t tag, std::uint16_t expected_used) {
        std::array<std::uint8_t, 60> frame{};
        for (std::size_t i = 0; i < frame.size(); ++i) frame[i] = std::uint8_t(tag * 3 + i);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons(theirs);
        REQUIRE(::sendto(ours.fd.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
                60);
        REQUIRE(xover::test::wait_until([&] { return fe.rx.used_idx() == expected_used; }));
        CHECK(fe.received(expected_used) == frame);
    };
    // The RX interrupt: the back-end signals vector 0's irqfd itself; no
    // xover thread delivers it.
    auto counter = [&](std::string_view wanted) {
        for (auto& [name, value] : fe.device->counters())
            if (name == wanted) return value;
        return std::uint64_t(~0ull);
    };
    receive_frame(7, 1);
    CHECK(xover::test::wait_until([&] { return fe.msi.signalled(0) > 0; }));
    CHECK(fe.msi.fired[0].load() == 0);
    CHECK(counter("vhost_user_calls") == 0);

    // Vector 0 masked: the call comes to xover, which leaves it pending
    // (PBA) and sends it at the unmask, as the transport does for its own.
    fe.drv->mask_vector(0, true);
    fe.post_rx_buffers(1);
    receive_frame(8, 2);
    REQUIRE(xover::test::wait_until([&] { return counter("vhost_user_calls") >= 1; }));
    CHECK(fe.msi.signalled(0) == 0);
    CHECK((fe.drv->pba() & 1) == 1);
    fe.drv->mask_vector(0, false);
    CHECK(fe.msi.fired[0].load() == 1);
    CHECK((fe.drv->pba() & 1) == 0);
    int fired_before = fe.msi.fired[0].load();
    fe.post_rx_buffers(1);
    receive_frame(10, 3);
    CHECK(xover::test::wait_until([&] { return fe.msi.signalled(0) > 0; }));
    CHECK(fe.msi.fired[0].load() == fired_before);

    // The back-end dies: the link reads down; a new one gets the rings
    // where they were, and frames flow again both ways.
    backend->kill();
    std::filesystem::remove(socket);
    REQUIRE(xover::test::wait_until([&] { return !fe.link_up(); }));
    CHECK(fe.msi.fired[2].load() >= 1);  // the configuration interrupt
    backend = std::make_unique<Backend>(socket, theirs, ours.port);
    REQUIRE(xover::test::wait_until([&] { return fe.link_up(); }, std::chrono::milliseconds(8000)));
    send_frame(2);
    REQUIRE(xover::test::wait_until([&] { return fe.tx.used_idx() == 2; }));
    receive_frame(9, 4);
    CHECK(xover::test::wait_until([&] { return fe.msi.signalled(0) > 0; }));
    CHECK(counter("vhost_user_connects") == 2);
}

// DPDK's testpmd with two vhost ports on `s0` and `s1` (`client`: it
// connects to them, retrying, instead of listening), forwarding port 0 <->
// port 1; no hugepages, no PCI. Its stdin stays open (it exits at EOF);
// killed at scope exit.
struct Testpmd {
    pid_t pid = -1;
    int stdin_fd = -1;
    Testpmd(const std::filesystem::path& dir, const std::filesystem::path& s0, const std::filesystem::path& s1,
            bool client) {
        const char* testpmd = "/usr/bin/dpdk-testpmd";
        if (!std::filesystem::exists(testpmd))
            FAIL("no dpdk-testpmd (Debian package dpdk-dev; scripts/install-deps.sh)");
        int in[2];
        REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        const std::string log = (dir / (client ? "testpmd-client.log" : "testpmd.log")).string();
        ::posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
        std::string prefix = "xover-test-" + std::to_string(::getpid()) + (client ? "-c" : "");
        std::string mode = client ? ",client=1" : "";
        std::vector<std::string> args{testpmd, "-l", "0-1", "--no-pci", "--no-huge", "-m", "1024", "--file-prefix",
                                      prefix, "--vdev", "net_vhost0,iface=" + s0.string() + ",queues=1" + mode,
                                      "--vdev", "net_vhost1,iface=" + s1.string() + ",queues=1" + mode, "--",
                                      "--forward-mode=io", "--auto-start", "--nb-cores=1", "--total-num-mbufs=8192"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(::posix_spawn(&pid, testpmd, &actions, nullptr, argv.data(), environ) == 0);
        ::posix_spawn_file_actions_destroy(&actions);
        ::close(in[0]);
        stdin_fd = in[1];
    }
    ~Testpmd() {
        ::close(stdin_fd);
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
    }
};

// a -> b through testpmd until the ports are up, then in order both ways.
void through_testpmd(FrontendRig& a, FrontendRig& b) {
    a.bring_up();
    b.bring_up();
    a.post_rx_buffers(8);
    b.post_rx_buffers(8);
    // testpmd's vhost ports come up some time after each device's rings
    // are live, and until both are up it drops what it cannot forward (a
    // switch port without link): probe until a frame gets through.
    std::array<std::uint8_t, 60> probe{};
    for (int tries = 0; tries < 100 && b.rx.used_idx() == 0; ++tries) {
        probe = a.transmit(0x11);
        xover::test::wait_until([&] { return b.rx.used_idx() > 0; }, std::chrono::milliseconds(100));
    }
    REQUIRE(b.rx.used_idx() >= 1);
    CHECK(b.received(1) == probe);
    // From then on every frame arrives, in order, both ways.
    for (int i = 0; i < 4; ++i) {
        std::uint16_t want = std::uint16_t(b.rx.used_idx() + 1);
        auto frame = a.transmit(std::uint8_t(0x20 + i));
        REQUIRE(xover::test::wait_until([&] { return b.rx.used_idx() >= want; }, std::chrono::milliseconds(5000)));
        CHECK(b.received(want) == frame);
    }
    auto back = b.transmit(0x55);
    REQUIRE(xover::test::wait_until([&] { return a.rx.used_idx() >= 1; }, std::chrono::milliseconds(5000)));
    CHECK(a.received(1) == back);
}

TEST_CASE("two virtio-net NICs on DPDK's testpmd (vhost PMD, io forwarding) reach each other",
          "[vhost-user][frontend][dpdk]") {
    TempDir dir;
    auto s0 = dir.path / "port0.sock", s1 = dir.path / "port1.sock";
    Testpmd testpmd(dir.path, s0, s1, false);
    REQUIRE(xover::test::wait_until([&] { return std::filesystem::exists(s0) && std::filesystem::exists(s1); },
                                    std::chrono::milliseconds(20000)));
    FrontendRig a("fe-a", s0, "52:54:00:7d:00:01"), b("fe-b", s1, "52:54:00:7d:00:02");
    through_testpmd(a, b);
}

TEST_CASE("two virtio-net NICs in server mode, testpmd connecting to them (client=1)",
          "[vhost-user][frontend][dpdk]") {
    TempDir dir;
    auto s0 = dir.path / "vm0.sock", s1 = dir.path / "vm1.sock";
    Testpmd testpmd(dir.path, s0, s1, true);
    // Each device listens and waits (up to 30 s) for testpmd, which retries every second.
    FrontendRig a("fe-sa", s0, "52:54:00:7d:00:11", true), b("fe-sb", s1, "52:54:00:7d:00:12", true);
    through_testpmd(a, b);
}
