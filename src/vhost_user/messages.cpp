#include "xover/vhost_user/messages.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <string_view>
#include <type_traits>

namespace xover::vhost_user {

namespace {

struct Header {
    std::uint32_t request;
    std::uint32_t flags;
    std::uint32_t size;
};
static_assert(sizeof(Header) == kHeaderSize);

constexpr std::size_t kU64Size = 8;
constexpr std::size_t kVringStateSize = 8;
constexpr std::size_t kVringAddressSize = 40;
constexpr std::size_t kMemoryTableHeaderSize = 8;  // u32 nregions, u32 padding
constexpr std::size_t kMemoryRegionSize = 32;
constexpr std::size_t kMemRegMessageSize = 8 + kMemoryRegionSize;  // u64 padding, one region

// Every front-end request the spec defines (by number, from 1), named as
// the spec does (for log lines), with the largest payload and the most
// fds it may carry. The decoders check exact layouts; these bounds only
// keep read_message from reading more than the request could ever need.
// Requests whose payload the spec leaves empty may carry up to 8 (ignored)
// bytes, so a front-end that sends a zero u64 with them is not refused over
// nothing. Requests with variable payloads, and those this back-end never
// serves, get the global caps: the session refuses them and their fds
// close with the message. REM_MEM_REG may carry an fd the back-end closes.
struct RequestLimits {
    const char* name;
    std::size_t max_payload;
    std::size_t max_fds;
};
constexpr std::size_t kAny = kMaxPayloadSize;
constexpr std::size_t kAnyFds = kMaxFdsPerMessage;
constexpr RequestLimits kRequests[] = {
    {"GET_FEATURES", kU64Size, 0},
    {"SET_FEATURES", kU64Size, 0},
    {"SET_OWNER", kU64Size, 0},
    {"RESET_OWNER", kU64Size, 0},
    {"SET_MEM_TABLE", kMemoryTableHeaderSize + kMaxMemoryRegions * kMemoryRegionSize, kMaxMemoryRegions},
    {"SET_LOG_BASE", 16, 1},  // u64 mmap_size, u64 mmap_offset
    {"SET_LOG_FD", kU64Size, 1},
    {"SET_VRING_NUM", kU64Size, 0},
    {"SET_VRING_ADDR", kVringAddressSize, 0},
    {"SET_VRING_BASE", kU64Size, 0},
    {"GET_VRING_BASE", kU64Size, 0},
    {"SET_VRING_KICK", kU64Size, 1},
    {"SET_VRING_CALL", kU64Size, 1},
    {"SET_VRING_ERR", kU64Size, 1},
    {"GET_PROTOCOL_FEATURES", kU64Size, 0},
    {"SET_PROTOCOL_FEATURES", kU64Size, 0},
    {"GET_QUEUE_NUM", kU64Size, 0},
    {"SET_VRING_ENABLE", kU64Size, 0},
    {"SEND_RARP", kU64Size, 0},
    {"NET_SET_MTU", kU64Size, 0},
    {"SET_BACKEND_REQ_FD", kU64Size, 1},
    {"IOTLB_MSG", kAny, 0},
    {"SET_VRING_ENDIAN", kU64Size, 0},
    {"GET_CONFIG", 12 + kMaxConfigSize, 0},
    {"SET_CONFIG", kAny, 0},
    {"CREATE_CRYPTO_SESSION", kAny, kAnyFds},
    {"CLOSE_CRYPTO_SESSION", kAny, kAnyFds},
    {"POSTCOPY_ADVISE", kAny, kAnyFds},
    {"POSTCOPY_LISTEN", kAny, kAnyFds},
    {"POSTCOPY_END", kAny, kAnyFds},
    {"GET_INFLIGHT_FD", kAny, kAnyFds},
    {"SET_INFLIGHT_FD", kAny, kAnyFds},
    {"GPU_SET_SOCKET", kAny, kAnyFds},
    {"RESET_DEVICE", kAny, kAnyFds},
    {"VRING_KICK", kAny, kAnyFds},
    {"GET_MAX_MEM_SLOTS", kU64Size, 0},
    {"ADD_MEM_REG", kMemRegMessageSize, 1},
    {"REM_MEM_REG", kMemRegMessageSize, 1},
    {"SET_STATUS", kAny, kAnyFds},
    {"GET_STATUS", kAny, kAnyFds},
    {"GET_SHARED_OBJECT", kAny, kAnyFds},
    {"SET_DEVICE_STATE_FD", kAny, kAnyFds},
    {"CHECK_DEVICE_STATE", kAny, kAnyFds},
};
static_assert(std::size(kRequests) == 43);
static_assert(std::string_view(kRequests[std::size_t(Request::RemMemReg) - 1].name) == "REM_MEM_REG");

// The request's entry; null for a number the spec does not define.
const RequestLimits* limits_of(std::uint32_t request) {
    return request >= 1 && request <= std::size(kRequests) ? &kRequests[request - 1] : nullptr;
}

std::size_t max_payload(std::uint32_t request) {
    const RequestLimits* l = limits_of(request);
    return l ? l->max_payload : kMaxPayloadSize;
}

std::size_t max_fds(std::uint32_t request) {
    const RequestLimits* l = limits_of(request);
    return l ? l->max_fds : kMaxFdsPerMessage;
}

// Blocks until `socket` is ready for `events`: read_message and the send
// helpers are blocking calls even if the session made the socket
// non-blocking.
void wait_for(int socket, short events) {
    pollfd p{socket, events, 0};
    while (::poll(&p, 1, -1) < 0)
        if (errno != EINTR) throw system_error("vhost-user poll");
}

// What arrived besides the bytes: the fds (owned from the moment they are
// received, so every throw closes them) and whether the kernel truncated
// the control data (it then closed the fds that did not fit).
struct Ancillary {
    std::vector<kvm::UniqueFd> fds;
    bool truncated = false;
};

void take_fds(msghdr& msg, Ancillary& out) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        if (c->cmsg_len < CMSG_LEN(0)) continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            out.fds.emplace_back(fd);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) out.truncated = true;
}

// One recvmsg of at most `len` bytes, with room for one fd more than any
// message may carry (so "too many" is seen as a count, not only as
// MSG_CTRUNC). Returns the byte count, 0 at end of stream.
std::size_t receive_some(int socket, std::uint8_t* data, std::size_t len, Ancillary& fds) {
    alignas(cmsghdr) std::uint8_t control[CMSG_SPACE((kMaxFdsPerMessage + 1) * sizeof(int))];
    for (;;) {
        iovec iov{data, len};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                wait_for(socket, POLLIN);
                continue;
            }
            throw system_error("vhost-user recvmsg");
        }
        take_fds(msg, fds);
        return static_cast<std::size_t>(n);
    }
}

// Fills `buffer` completely (a stream socket may deliver a message in
// pieces). Returns how many bytes arrived before the end of stream:
// buffer.size() unless the peer closed.
std::size_t receive_exactly(int socket, std::span<std::uint8_t> buffer, Ancillary& fds) {
    std::size_t done = 0;
    while (done < buffer.size()) {
        std::size_t n = receive_some(socket, buffer.data() + done, buffer.size() - done, fds);
        if (n == 0) break;
        done += n;
    }
    return done;
}

void check_fds(const std::string& what, const Ancillary& a, std::size_t max) {
    if (a.truncated)
        throw ProtocolError("{}: more than {} fds attached (control data truncated)", what, kMaxFdsPerMessage);
    if (a.fds.size() > max) throw ProtocolError("{}: {} fds attached, at most {}", what, a.fds.size(), max);
}

// The header, or nullopt if the peer closed before sending any of it.
std::optional<Header> receive_header(int socket, Ancillary& fds) {
    Header h;
    std::uint8_t bytes[kHeaderSize];
    std::size_t n = receive_exactly(socket, bytes, fds);
    if (n == 0 && fds.fds.empty() && !fds.truncated) return std::nullopt;
    if (n < kHeaderSize)
        throw ProtocolError("vhost-user message: connection closed after {} of {} header bytes", n, kHeaderSize);
    std::memcpy(&h, bytes, sizeof h);
    return h;
}

std::vector<std::uint8_t> receive_payload(int socket, const Header& h, Ancillary& fds) {
    std::vector<std::uint8_t> payload(h.size);
    std::size_t n = receive_exactly(socket, payload, fds);
    if (n < payload.size())
        throw ProtocolError("{}: connection closed after {} of {} payload bytes", fmt_request(h.request), n,
                            payload.size());
    return payload;
}

void check_request_header(const Header& h, const Ancillary& fds) {
    std::string name = fmt_request(h.request);
    check_fds(name, fds, kMaxFdsPerMessage);
    if ((h.flags & kFlagVersionMask) != kVersion)
        throw ProtocolError("{}: protocol version {}, expected {}", name, h.flags & kFlagVersionMask, kVersion);
    if (h.flags & kFlagReply) throw ProtocolError("{}: reply flag set on a request", name);
    if (h.size > kMaxPayloadSize)
        throw ProtocolError("{}: payload of {} bytes, at most {}", name, h.size, kMaxPayloadSize);
    if (h.size > max_payload(h.request))
        throw ProtocolError("{}: payload of {} bytes, at most {}", name, h.size, max_payload(h.request));
}

void check_reply_header(const Header& h, std::uint32_t request) {
    std::string name = fmt_request(request);
    if (h.request != request) throw ProtocolError("{}: got a reply to {}", name, fmt_request(h.request));
    if ((h.flags & kFlagVersionMask) != kVersion)
        throw ProtocolError("{} reply: protocol version {}, expected {}", name, h.flags & kFlagVersionMask, kVersion);
    if (!(h.flags & kFlagReply)) throw ProtocolError("{} reply: reply flag not set", name);
    if (h.size > kMaxPayloadSize)
        throw ProtocolError("{} reply: payload of {} bytes, at most {}", name, h.size, kMaxPayloadSize);
}

// Sends all of `bytes`, the fds riding on the first sendmsg (the one that
// carries the header's first byte, where the receiver looks for them).
void send_all(int socket, std::span<const std::uint8_t> bytes, std::span<const int> fds, std::uint32_t request) {
    std::vector<std::uint8_t> control;
    std::size_t done = 0;
    while (done < bytes.size()) {
        iovec iov{const_cast<std::uint8_t*>(bytes.data() + done), bytes.size() - done};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (done == 0 && !fds.empty()) {
            control.assign(CMSG_SPACE(fds.size() * sizeof(int)), 0);
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
            std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
        }
        ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                wait_for(socket, POLLOUT);
                continue;
            }
            throw system_error(fmt::format("vhost-user sendmsg ({})", fmt_request(request)));
        }
        done += static_cast<std::size_t>(n);
    }
}

template <typename T>
void put(std::vector<std::uint8_t>& out, T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    auto old = out.size();
    out.resize(old + sizeof(T));
    std::memcpy(out.data() + old, &value, sizeof(T));
}

// Callers check the payload's size first.
template <typename T>
T get(const Message& m, std::size_t offset) {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, m.payload.data() + offset, sizeof(T));
    return value;
}

void expect_size(const Message& m, std::size_t size) {
    if (m.payload.size() != size)
        throw ProtocolError("{}: payload of {} bytes, expected {}", fmt_request(m.request), m.payload.size(), size);
}

bool wraps(std::uint64_t start, std::uint64_t size) { return start > std::numeric_limits<std::uint64_t>::max() - size; }

MemoryRegion get_region(const Message& m, std::size_t offset) {
    MemoryRegion r;
    r.guest_phys_addr = get<std::uint64_t>(m, offset);
    r.memory_size = get<std::uint64_t>(m, offset + 8);
    r.userspace_addr = get<std::uint64_t>(m, offset + 16);
    r.mmap_offset = get<std::uint64_t>(m, offset + 24);
    return r;
}

void check_region(const std::string& name, std::size_t i, const MemoryRegion& r) {
    if (r.memory_size == 0) throw ProtocolError("{}: region {} is empty", name, i);
    if (wraps(r.guest_phys_addr, r.memory_size))
        throw ProtocolError("{}: region {}: guest address {:#x} + size {:#x} wraps", name, i, r.guest_phys_addr,
                            r.memory_size);
    if (wraps(r.userspace_addr, r.memory_size))
        throw ProtocolError("{}: region {}: user address {:#x} + size {:#x} wraps", name, i, r.userspace_addr,
                            r.memory_size);
    if (wraps(r.mmap_offset, r.memory_size))
        throw ProtocolError("{}: region {}: mmap offset {:#x} + size {:#x} wraps", name, i, r.mmap_offset,
                            r.memory_size);
}

}  // namespace

std::string fmt_request(std::uint32_t request) {
    const RequestLimits* l = limits_of(request);
    return l ? l->name : fmt::format("request {}", request);
}

std::optional<Message> read_message(int socket) {
    // Declared first so that every fd received is closed on any throw.
    Ancillary fds;
    std::optional<Header> h = receive_header(socket, fds);
    if (!h) return std::nullopt;
    check_request_header(*h, fds);
    Message m;
    m.request = h->request;
    m.flags = h->flags;
    m.payload = receive_payload(socket, *h, fds);
    // Checked again after the payload, now against the request's own
    // limit: a front-end that sent the payload separately may have
    // attached fds to it.
    check_fds(fmt_request(h->request), fds, max_fds(h->request));
    m.fds = std::move(fds.fds);
    return m;
}

void send_reply(int socket, std::uint32_t request, std::span<const std::uint8_t> payload) {
    send_all(socket, encode_request(request, kVersion | kFlagReply, payload), {}, request);
}

void send_reply_u64(int socket, std::uint32_t request, std::uint64_t value) {
    send_reply(socket, request, encode_u64(value));
}

std::uint64_t decode_u64(const Message& m) {
    expect_size(m, kU64Size);
    return get<std::uint64_t>(m, 0);
}

VringState decode_vring_state(const Message& m) {
    expect_size(m, kVringStateSize);
    return {get<std::uint32_t>(m, 0), get<std::uint32_t>(m, 4)};
}

VringAddress decode_vring_address(const Message& m) {
    expect_size(m, kVringAddressSize);
    VringAddress a;
    a.index = get<std::uint32_t>(m, 0);
    a.flags = get<std::uint32_t>(m, 4);
    a.desc_user_addr = get<std::uint64_t>(m, 8);
    a.used_user_addr = get<std::uint64_t>(m, 16);
    a.avail_user_addr = get<std::uint64_t>(m, 24);
    a.log_guest_addr = get<std::uint64_t>(m, 32);
    return a;
}

std::vector<MemoryRegion> decode_memory_table(const Message& m) {
    std::string name = fmt_request(m.request);
    if (m.payload.size() < kMemoryTableHeaderSize)
        throw ProtocolError("{}: payload of {} bytes, at least {}", name, m.payload.size(), kMemoryTableHeaderSize);
    std::uint32_t count = get<std::uint32_t>(m, 0);
    if (count == 0) throw ProtocolError("{}: no regions", name);
    if (count > kMaxMemoryRegions) throw ProtocolError("{}: {} regions, at most {}", name, count, kMaxMemoryRegions);
    // QEMU sizes the payload for exactly `count` regions; older front-ends
    // send the whole fixed-size array of kMaxMemoryRegions.
    std::size_t exact = kMemoryTableHeaderSize + count * kMemoryRegionSize;
    std::size_t full = kMemoryTableHeaderSize + kMaxMemoryRegions * kMemoryRegionSize;
    if (m.payload.size() != exact && m.payload.size() != full)
        throw ProtocolError("{}: payload of {} bytes for {} regions, expected {} or {}", name, m.payload.size(),
                            count, exact, full);
    if (m.fds.size() != count) throw ProtocolError("{}: {} regions but {} fds", name, count, m.fds.size());
    std::vector<MemoryRegion> regions;
    for (std::size_t i = 0; i < count; ++i) {
        MemoryRegion r = get_region(m, kMemoryTableHeaderSize + i * kMemoryRegionSize);
        check_region(name, i, r);
        regions.push_back(r);
    }
    return regions;
}

VringFd decode_vring_fd(Message& m) {
    std::string name = fmt_request(m.request);
    expect_size(m, kU64Size);
    std::uint64_t value = get<std::uint64_t>(m, 0);
    if (value & ~(kVringIndexMask | kVringNoFd))
        throw ProtocolError("{}: payload {:#x} has bits set above bit 8", name, value);
    bool no_fd = value & kVringNoFd;
    if (no_fd && !m.fds.empty()) throw ProtocolError("{}: 'no fd' bit set but {} fds attached", name, m.fds.size());
    if (!no_fd && m.fds.size() != 1) throw ProtocolError("{}: {} fds attached, expected 1", name, m.fds.size());
    VringFd out;
    out.index = static_cast<std::uint32_t>(value & kVringIndexMask);
    if (!no_fd) {
        out.fd = std::move(m.fds.front());
        m.fds.clear();
    }
    return out;
}

std::vector<std::uint8_t> encode_request(std::uint32_t request, std::uint32_t flags,
                                          std::span<const std::uint8_t> payload) {
    if (payload.size() > std::numeric_limits<std::uint32_t>::max())
        throw Error("{}: payload of {} bytes does not fit a header", fmt_request(request), payload.size());
    std::vector<std::uint8_t> bytes;
    bytes.reserve(kHeaderSize + payload.size());
    put(bytes, Header{request, flags, static_cast<std::uint32_t>(payload.size())});
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    return bytes;
}

void send_request(int socket, std::uint32_t request, std::span<const std::uint8_t> payload,
                  std::span<const int> fds, std::uint32_t extra_flags) {
    send_all(socket, encode_request(request, kVersion | extra_flags, payload), fds, request);
}

ConfigAccess decode_config_access(const Message& m) {
    constexpr std::size_t kHeader = 12;
    if (m.payload.size() < kHeader)
        throw ProtocolError("{}: {} bytes, shorter than its 12-byte header", fmt_request(m.request), m.payload.size());
    ConfigAccess a{get<std::uint32_t>(m, 0), get<std::uint32_t>(m, 4), get<std::uint32_t>(m, 8)};
    if (a.size > kMaxConfigSize)
        throw ProtocolError("{}: {} bytes of configuration, more than {}", fmt_request(m.request), a.size, kMaxConfigSize);
    expect_size(m, kHeader + a.size);
    return a;
}

std::vector<std::uint8_t> encode_config(const ConfigAccess& access, std::span<const std::uint8_t> bytes) {
    std::vector<std::uint8_t> out;
    put(out, access.offset);
    put(out, std::uint32_t(bytes.size()));
    put(out, access.flags);
    out.insert(out.end(), bytes.begin(), bytes.end());
    return out;
}

std::vector<std::uint8_t> encode_vring_state(VringState s) {
    std::vector<std::uint8_t> out;
    put(out, s.index);
    put(out, s.num);
    return out;
}

std::vector<std::uint8_t> encode_vring_address(const VringAddress& a) {
    std::vector<std::uint8_t> out;
    put(out, a.index);
    put(out, a.flags);
    put(out, a.desc_user_addr);
    put(out, a.used_user_addr);
    put(out, a.avail_user_addr);
    put(out, a.log_guest_addr);
    return out;
}

std::vector<std::uint8_t> encode_memory_table(std::span<const MemoryRegion> regions) {
    // Any count, even an invalid one: the tests' hostile front-end uses it.
    std::vector<std::uint8_t> out;
    put(out, static_cast<std::uint32_t>(regions.size()));
    put(out, std::uint32_t{0});
    for (const MemoryRegion& r : regions) {
        put(out, r.guest_phys_addr);
        put(out, r.memory_size);
        put(out, r.userspace_addr);
        put(out, r.mmap_offset);
    }
    return out;
}

std::vector<std::uint8_t> encode_u64(std::uint64_t v) {
    std::vector<std::uint8_t> out;
    put(out, v);
    return out;
}

std::vector<std::uint8_t> read_reply(int socket, std::uint32_t request) {
    Ancillary fds;  // a reply's fds are not used: closed on return
    std::optional<Header> h = receive_header(socket, fds);
    if (!h) throw ProtocolError("{}: connection closed before the reply", fmt_request(request));
    check_reply_header(*h, request);
    return receive_payload(socket, *h, fds);
}

}  // namespace xover::vhost_user
