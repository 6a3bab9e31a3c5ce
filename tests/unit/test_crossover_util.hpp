// Builders for crossover tests: a fake VM's NIC with real memfds and
// eventfds, as `xover run` would register it; a message's trip through a
// socket pair.
#pragma once

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include <string>
#include <vector>

#include "xover/crossover/broker_backend.hpp"
#include "xover/crossover/protocol.hpp"
#include "xover/crossover/shared_memory.hpp"

namespace xover::crossover::test {

inline net::MacAddress mac(std::uint8_t last) { return net::MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, last}}; }

inline kvm::UniqueFd eventfd_for_test() { return kvm::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); }

// A duplicate of `fd` to hand over (registrations own their fds).
inline kvm::UniqueFd dup_fd(int fd) { return kvm::UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

// What a VM keeps for one NIC: its RAM, state page and eventfds.
struct FakeNic {
    kvm::UniqueFd ram;
    std::uint64_t ram_size = 0;
    SharedStatePage state;
    kvm::UniqueFd irq = eventfd_for_test();
    kvm::UniqueFd doorbell = eventfd_for_test();
    // Window mode's memfds: the TX element and the ring area.
    kvm::UniqueFd window;
    kvm::UniqueFd rings;
    static constexpr std::uint64_t kWindowBytes = 8192;
    static constexpr std::uint64_t kRingBytes = 4096;

    FakeNic(const std::string& name, std::uint64_t size = 1 << 20)
        : ram(create_sealed_memfd(name + "-ram", size)),
          ram_size(size),
          state(SharedStatePage::create(name + "-state", 0)),
          window(create_sealed_memfd(name + "-window", kWindowBytes)),
          rings(create_sealed_memfd(name + "-rings", kRingBytes)) {}

    // A registration carrying duplicates of this NIC's fds.
    NicRegistration registration(std::uint32_t index, net::MacAddress m, std::vector<std::string> peers,
                                 bool auto_peer = false, LinkMode mode = LinkMode::Copy) const {
        NicRegistration r;
        r.index = index;
        r.mac = m;
        r.model = "e1000";
        r.peers = std::move(peers);
        r.auto_peer = auto_peer;
        r.mode = mode;
        r.ram_size = ram_size;
        r.ram = dup_fd(ram.get());
        r.state = state.dup_fd();
        r.irq = dup_fd(irq.get());
        r.doorbell = dup_fd(doorbell.get());
        if (mode == LinkMode::Window) {
            r.window = dup_fd(window.get());
            r.window_size = kWindowBytes;
            r.rings = dup_fd(rings.get());
            r.rings_size = kRingBytes;
        }
        return r;
    }
};

// `m` sent through a SOCK_SEQPACKET pair and received on the other end.
inline Message round_trip(Message m) {
    auto [a, b] = seqpacket_pair();
    REQUIRE(send_message(a.get(), m));
    Received r = receive_message(b.get());
    REQUIRE(r.status == Received::Status::Message);
    return std::move(*r.message);
}

inline bool same_file(int a, int b) {
    struct stat sa {}, sb {};
    return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// A VM's NIC joining the broker's switch listening at `path`: connected
// and greeted as VM `vm`, NIC 0. -1 when either step failed.
inline int connect_switch_port(const std::filesystem::path& path, const std::string& vm, const net::MacAddress& m) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    auto hello = SwitchHello{vm, 0, m}.encode();
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::send(fd, hello.data(), hello.size(), 0) != ssize_t(hello.size())) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace xover::crossover::test
