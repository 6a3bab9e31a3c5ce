// Opening a tap interface with errors a user can act on (see tap_device.hpp).
#include "xover/net/tap_device.hpp"

#include <fcntl.h>
#include <net/if.h>  // before linux/if_tun.h: glibc's ifreq, and the kernel header then skips its own
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"

namespace xover::net {

namespace {

ifreq request_for(const std::string& ifname) {
    ifreq req{};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    return req;
}

// Why TUNSETIFF refused, in words (errno values from drivers/net/tun.c's
// attach path).
std::string attach_problem(const std::string& ifname, int err) {
    switch (err) {
        case EPERM:
        case EACCES:
            return fmt::format(
                "permission denied (needs CAP_NET_ADMIN, or a tap made for this user: "
                "ip tuntap add {} mode tap user $USER)",
                ifname);
        case EINVAL: return fmt::format("{} is not a tap interface", ifname);
        case EBUSY: return "already attached by another process";
        default: return fmt::format("TUNSETIFF: {}", std::strerror(err));
    }
}

}  // namespace

kvm::UniqueFd open_tap(const std::string& ifname, TapMissing missing) {
    if (missing == TapMissing::Refuse && ::if_nametoindex(ifname.c_str()) == 0)
        throw Error("tap:{}: no such interface (create it first: ip tuntap add {} mode tap)", ifname, ifname);
    kvm::UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) throw system_error(fmt::format("tap:{}: open /dev/net/tun", ifname));
    ifreq req = request_for(ifname);
    req.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (::ioctl(fd.get(), TUNSETIFF, &req) < 0) throw Error("tap:{}: {}", ifname, attach_problem(ifname, errno));
    return fd;
}

void bring_tap_up(const std::string& ifname) {
    kvm::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq req = request_for(ifname);
    if (!sock || ::ioctl(sock.get(), SIOCGIFFLAGS, &req) < 0) {
        spdlog::warn("tap:{}: cannot read interface flags: {}", ifname, std::strerror(errno));
        return;
    }
    if (req.ifr_flags & IFF_UP) return;
    req.ifr_flags |= IFF_UP;
    if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) < 0)
        spdlog::warn("tap:{}: cannot bring the interface up ({}); bring it up yourself", ifname, std::strerror(errno));
}

TapLink tap_link(const std::string& ifname, int query_socket) {
    kvm::UniqueFd own;
    if (query_socket < 0) {
        own = kvm::UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        query_socket = own.get();
    }
    ifreq req = request_for(ifname);
    if (query_socket < 0 || ::ioctl(query_socket, SIOCGIFFLAGS, &req) < 0) return TapLink::Gone;
    return (req.ifr_flags & IFF_UP) ? TapLink::Up : TapLink::Down;
}

const char* to_string(TapLink link) {
    switch (link) {
        case TapLink::Up: return "up";
        case TapLink::Down: return "down";
        case TapLink::Gone: return "gone";
    }
    return "?";
}

}  // namespace xover::net
