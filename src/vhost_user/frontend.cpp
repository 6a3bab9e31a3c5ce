#include "xover/vhost_user/frontend.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "xover/unix_address.hpp"

namespace xover::vhost_user {

namespace {

constexpr std::uint64_t kVersion1 = std::uint64_t{1} << 32;
constexpr std::uint64_t kProtocolFeatures = std::uint64_t{1} << kFeatureProtocolFeatures;
constexpr std::uint64_t kReplyAck = std::uint64_t{1} << kProtocolFeatureReplyAck;

std::uint64_t as_u64(const std::vector<std::uint8_t>& payload, Request request) {
    if (payload.size() != 8)
        throw ProtocolError("{}: a reply of {} bytes, expected 8", fmt_request(std::uint32_t(request)), payload.size());
    std::uint64_t v;
    std::memcpy(&v, payload.data(), 8);
    return v;
}

}  // namespace

kvm::UniqueFd Frontend::connect(const std::filesystem::path& path) {
    const sockaddr_un addr = unix_address(path, "vhost-user socket");
    kvm::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw system_error("socket(AF_UNIX)");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        throw Error("connect: {}", std::strerror(errno));
    return fd;
}

Frontend::Frontend(kvm::UniqueFd socket) : socket_(std::move(socket)) {
    features_ = as_u64(call(Request::GetFeatures), Request::GetFeatures);
    if (!(features_ & kVersion1)) throw Error("the vhost-user back-end does not offer VIRTIO_F_VERSION_1");
    if (!(features_ & kProtocolFeatures))
        throw Error("the vhost-user back-end does not offer VHOST_USER_F_PROTOCOL_FEATURES");
    std::uint64_t protocol = as_u64(call(Request::GetProtocolFeatures), Request::GetProtocolFeatures);
    std::uint64_t wanted = protocol & kReplyAck;
    send(Request::SetProtocolFeatures, encode_u64(wanted));
    reply_ack_ = wanted & kReplyAck;
    send(Request::SetOwner, {});
}

void Frontend::set_features(std::uint64_t features) { send(Request::SetFeatures, encode_u64(features | kProtocolFeatures)); }

void Frontend::set_mem_table(std::span<const MemoryRegion> regions, std::span<const int> fds) {
    send(Request::SetMemTable, encode_memory_table(regions), fds);
}

void Frontend::set_vring_num(std::uint32_t ring, std::uint32_t num) {
    send(Request::SetVringNum, encode_vring_state({ring, num}));
}

void Frontend::set_vring_base(std::uint32_t ring, std::uint16_t base) {
    send(Request::SetVringBase, encode_vring_state({ring, base}));
}

void Frontend::set_vring_addr(const VringAddress& address) { send(Request::SetVringAddr, encode_vring_address(address)); }

void Frontend::set_vring_kick(std::uint32_t ring, int fd) {
    int fds[1] = {fd};
    send(Request::SetVringKick, encode_u64(fd >= 0 ? ring : ring | kVringNoFd), std::span(fds, fd >= 0 ? 1 : 0));
}

void Frontend::set_vring_call(std::uint32_t ring, int fd) {
    int fds[1] = {fd};
    send(Request::SetVringCall, encode_u64(fd >= 0 ? ring : ring | kVringNoFd), std::span(fds, fd >= 0 ? 1 : 0));
}

void Frontend::set_vring_enable(std::uint32_t ring, bool enable) {
    send(Request::SetVringEnable, encode_vring_state({ring, enable ? 1u : 0u}));
}

std::uint16_t Frontend::get_vring_base(std::uint32_t ring) {
    std::vector<std::uint8_t> r = call(Request::GetVringBase, encode_vring_state({ring, 0}));
    if (r.size() != 8) throw ProtocolError("GET_VRING_BASE: a reply of {} bytes, expected 8", r.size());
    std::uint32_t num;
    std::memcpy(&num, r.data() + 4, 4);
    return std::uint16_t(num);
}

void Frontend::send(Request request, std::span<const std::uint8_t> payload, std::span<const int> fds) {
    send_request(socket_.get(), std::uint32_t(request), payload, fds, reply_ack_ ? kFlagNeedReply : 0);
    if (!reply_ack_) return;
    std::uint64_t status = as_u64(reply(request), request);
    if (status != 0) throw Error("the vhost-user back-end refused {} (status {})", fmt_request(std::uint32_t(request)), status);
}

std::vector<std::uint8_t> Frontend::call(Request request, std::span<const std::uint8_t> payload) {
    send_request(socket_.get(), std::uint32_t(request), payload);
    return reply(request);
}

std::vector<std::uint8_t> Frontend::reply(Request request) {
    pollfd p{socket_.get(), POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, int(kReplyTimeout.count()));
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        throw Error("the vhost-user back-end did not answer {} within {} ms", fmt_request(std::uint32_t(request)),
                    kReplyTimeout.count());
    return read_reply(socket_.get(), std::uint32_t(request));
}

}  // namespace xover::vhost_user
