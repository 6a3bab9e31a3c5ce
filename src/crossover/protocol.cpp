#include "xover/crossover/protocol.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <iterator>
#include <limits>
#include <type_traits>

namespace xover::crossover {

namespace {

// Wire type numbers. Never reuse a number; add new ones at the end.
enum class Type : std::uint16_t {
    Register = 1,
    RegisterOk = 2,
    RegisterError = 3,
    LinkUp = 4,
    LinkDown = 5,
    FrameSeen = 6,
    StatusRequest = 7,
    StatusReply = 8,
    SetPeers = 9,
    SoundLinkUp = 10,
    SoundLinkDown = 11,
    Last = SoundLinkDown,
};

struct Header {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint16_t type;
    std::uint32_t payload_size;
    std::uint32_t fd_count;
};
static_assert(sizeof(Header) == kHeaderSize);

class Writer {
public:
    template <typename T>
    void put(T value) {
        static_assert(std::is_trivially_copyable_v<T>);
        auto old = bytes.size();
        bytes.resize(old + sizeof(T));
        std::memcpy(bytes.data() + old, &value, sizeof(T));
    }
    void put_string(std::string_view s, std::size_t max) {
        if (s.size() > max) throw ProtocolError("string field of {} bytes exceeds the limit of {}", s.size(), max);
        put(static_cast<std::uint32_t>(s.size()));
        bytes.insert(bytes.end(), s.begin(), s.end());
    }
    void put_mac(const net::MacAddress& mac) { bytes.insert(bytes.end(), mac.bytes.begin(), mac.bytes.end()); }
    void put_fd(const kvm::UniqueFd& fd) {
        if (!fd) {
            put(std::int32_t{-1});
            return;
        }
        put(static_cast<std::int32_t>(fds.size()));
        fds.push_back(fd.get());
    }

    std::vector<std::uint8_t> bytes;
    std::vector<int> fds;
};

class Reader {
public:
    Reader(std::span<const std::uint8_t> payload, std::vector<kvm::UniqueFd>& fds) : data_(payload), fds_(fds) {}

    template <typename T>
    T get() {
        static_assert(std::is_trivially_copyable_v<T>);
        need(sizeof(T));
        T value;
        std::memcpy(&value, data_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }
    bool get_bool() {
        auto v = get<std::uint8_t>();
        if (v > 1) throw ProtocolError("bad boolean {}", v);
        return v == 1;
    }
    std::string get_string(std::size_t max) {
        auto size = get<std::uint32_t>();
        if (size > max) throw ProtocolError("string field of {} bytes exceeds the limit of {}", size, max);
        need(size);
        std::string s(reinterpret_cast<const char*>(data_.data() + pos_), size);
        pos_ += size;
        return s;
    }
    net::MacAddress get_mac() {
        need(6);
        net::MacAddress mac;
        std::memcpy(mac.bytes.data(), data_.data() + pos_, 6);
        pos_ += 6;
        return mac;
    }
    kvm::UniqueFd get_fd() {
        auto index = get<std::int32_t>();
        if (index == -1) return {};
        if (index < 0 || static_cast<std::size_t>(index) >= fds_.size())
            throw ProtocolError("fd index {} out of range ({} fds attached)", index, fds_.size());
        if (!fds_[index]) throw ProtocolError("fd index {} used twice", index);
        return std::move(fds_[index]);
    }
    LinkMode get_mode() {
        auto v = get<std::uint8_t>();
        if (v > static_cast<std::uint8_t>(LinkMode::Window)) throw ProtocolError("bad link mode {}", v);
        return static_cast<LinkMode>(v);
    }
    void finish() const {
        if (pos_ != data_.size()) throw ProtocolError("{} trailing bytes", data_.size() - pos_);
    }

private:
    void need(std::size_t n) const {
        if (data_.size() - pos_ < n) throw ProtocolError("message truncated");
    }
    std::span<const std::uint8_t> data_;
    std::vector<kvm::UniqueFd>& fds_;
    std::size_t pos_ = 0;
};

void put_mode(Writer& w, LinkMode mode) { w.put(static_cast<std::uint8_t>(mode)); }

// A NIC's static peers: in a Register and a SetPeers.
void put_peers(Writer& w, const std::vector<std::string>& peers) {
    if (peers.size() > kMaxPeersPerNic) throw ProtocolError("too many crossover peers ({})", peers.size());
    w.put(static_cast<std::uint32_t>(peers.size()));
    for (const auto& p : peers) w.put_string(p, kMaxNameLength);
}
std::vector<std::string> read_peers(Reader& r) {
    auto count = r.get<std::uint32_t>();
    if (count > kMaxPeersPerNic) throw ProtocolError("too many crossover peers ({})", count);
    std::vector<std::string> peers;
    for (std::uint32_t p = 0; p < count; ++p) peers.push_back(r.get_string(kMaxNameLength));
    return peers;
}

Type write_body(Writer& w, const Register& m) {
    w.put_string(m.vm_name, kMaxNameLength);
    w.put_string(m.consent_group, kMaxNameLength);
    if (m.nics.size() > kMaxNicsPerVm) throw ProtocolError("{} NICs exceed the limit of {}", m.nics.size(), kMaxNicsPerVm);
    w.put(static_cast<std::uint32_t>(m.nics.size()));
    for (const auto& nic : m.nics) {
        w.put(nic.index);
        w.put_mac(nic.mac);
        w.put_string(nic.model, kMaxNameLength);
        put_peers(w, nic.peers);
        w.put(static_cast<std::uint8_t>(nic.auto_peer));
        put_mode(w, nic.mode);
        w.put(nic.ram_size);
        w.put(nic.window_size);
        w.put(nic.rings_size);
        w.put_fd(nic.ram);
        w.put_fd(nic.state);
        w.put_fd(nic.window);
        w.put_fd(nic.rings);
        w.put_fd(nic.irq);
        w.put_fd(nic.doorbell);
        w.put_fd(nic.tx_irq);
    }
    if (m.sounds.size() > kMaxSoundsPerVm)
        throw ProtocolError("{} sound cards exceed the limit of {}", m.sounds.size(), kMaxSoundsPerVm);
    w.put(static_cast<std::uint32_t>(m.sounds.size()));
    for (const auto& sound : m.sounds) {
        w.put(sound.index);
        w.put_string(sound.peer, kMaxNameLength);
        w.put(sound.rate);
        w.put(sound.channels);
        w.put_fd(sound.inbox);
    }
    w.put(m.earlier_registrations);
    if (m.links.size() > kMaxLiveLinksPerVm)
        throw ProtocolError("{} live links exceed the limit of {}", m.links.size(), kMaxLiveLinksPerVm);
    w.put(static_cast<std::uint32_t>(m.links.size()));
    for (const auto& l : m.links) {
        w.put(l.link_id);
        w.put(l.local_nic);
        w.put_string(l.peer_vm, kMaxNameLength);
        w.put(l.peer_nic);
        put_mode(w, l.mode);
        w.put(static_cast<std::uint8_t>(l.automatic));
        w.put(l.producer_slot);
        w.put(l.peer_producer_slot);
    }
    return Type::Register;
}
Type write_body(Writer&, const RegisterOk&) { return Type::RegisterOk; }
Type write_body(Writer& w, const RegisterError& m) {
    w.put_string(m.reason, 4096);
    return Type::RegisterError;
}
Type write_body(Writer& w, const LinkUp& m) {
    w.put(m.link_id);
    w.put(m.local_nic);
    w.put_string(m.peer_vm, kMaxNameLength);
    w.put(m.peer_nic);
    w.put_mac(m.peer_mac);
    w.put_string(m.peer_model, kMaxNameLength);
    put_mode(w, m.mode);
    w.put(static_cast<std::uint8_t>(m.automatic));
    w.put(m.producer_slot);
    w.put(m.peer_producer_slot);
    w.put(m.peer_ram_size);
    w.put(m.peer_window_size);
    w.put(m.peer_rings_size);
    w.put_fd(m.peer_ram);
    w.put_fd(m.peer_state);
    w.put_fd(m.peer_window);
    w.put_fd(m.peer_rings);
    w.put_fd(m.peer_irq);
    w.put_fd(m.peer_doorbell);
    w.put_fd(m.peer_tx_irq);
    return Type::LinkUp;
}
Type write_body(Writer& w, const LinkDown& m) {
    w.put(m.link_id);
    w.put(m.local_nic);
    w.put_string(m.reason, 4096);
    return Type::LinkDown;
}
Type write_body(Writer& w, const FrameSeen& m) {
    w.put(m.nic);
    w.put_mac(m.dst);
    return Type::FrameSeen;
}
Type write_body(Writer& w, const StatusRequest& m) {
    w.put(static_cast<std::uint8_t>(m.json));
    return Type::StatusRequest;
}
Type write_body(Writer& w, const StatusReply& m) {
    w.put_string(m.text, kMaxPayloadSize - 4);
    return Type::StatusReply;
}
Type write_body(Writer& w, const SetPeers& m) {
    w.put(m.nic);
    put_peers(w, m.peers);
    w.put(static_cast<std::uint8_t>(m.auto_peer));
    return Type::SetPeers;
}
Type write_body(Writer& w, const SoundLinkUp& m) {
    w.put(m.local_card);
    w.put_string(m.peer_vm, kMaxNameLength);
    w.put(m.peer_card);
    w.put_fd(m.peer_inbox);
    return Type::SoundLinkUp;
}
Type write_body(Writer& w, const SoundLinkDown& m) {
    w.put(m.local_card);
    w.put_string(m.peer_vm, kMaxNameLength);
    w.put_string(m.reason, 4096);
    w.put(static_cast<std::uint8_t>(m.refused));
    return Type::SoundLinkDown;
}

Register read_register(Reader& r) {
    Register m;
    m.vm_name = r.get_string(kMaxNameLength);
    m.consent_group = r.get_string(kMaxNameLength);
    auto count = r.get<std::uint32_t>();
    if (count > kMaxNicsPerVm) throw ProtocolError("{} NICs exceed the limit of {}", count, kMaxNicsPerVm);
    for (std::uint32_t i = 0; i < count; ++i) {
        NicRegistration nic;
        nic.index = r.get<std::uint32_t>();
        nic.mac = r.get_mac();
        nic.model = r.get_string(kMaxNameLength);
        nic.peers = read_peers(r);
        nic.auto_peer = r.get_bool();
        nic.mode = r.get_mode();
        nic.ram_size = r.get<std::uint64_t>();
        nic.window_size = r.get<std::uint64_t>();
        nic.rings_size = r.get<std::uint64_t>();
        nic.ram = r.get_fd();
        nic.state = r.get_fd();
        nic.window = r.get_fd();
        nic.rings = r.get_fd();
        nic.irq = r.get_fd();
        nic.doorbell = r.get_fd();
        nic.tx_irq = r.get_fd();
        m.nics.push_back(std::move(nic));
    }
    auto sounds = r.get<std::uint32_t>();
    if (sounds > kMaxSoundsPerVm) throw ProtocolError("{} sound cards exceed the limit of {}", sounds, kMaxSoundsPerVm);
    for (std::uint32_t i = 0; i < sounds; ++i) {
        SoundRegistration sound;
        sound.index = r.get<std::uint32_t>();
        sound.peer = r.get_string(kMaxNameLength);
        sound.rate = r.get<std::uint32_t>();
        sound.channels = r.get<std::uint32_t>();
        sound.inbox = r.get_fd();
        m.sounds.push_back(std::move(sound));
    }
    m.earlier_registrations = r.get<std::uint32_t>();
    auto links = r.get<std::uint32_t>();
    if (links > kMaxLiveLinksPerVm) throw ProtocolError("{} live links exceed the limit of {}", links, kMaxLiveLinksPerVm);
    for (std::uint32_t i = 0; i < links; ++i) {
        LiveLink l;
        l.link_id = r.get<std::uint64_t>();
        l.local_nic = r.get<std::uint32_t>();
        l.peer_vm = r.get_string(kMaxNameLength);
        l.peer_nic = r.get<std::uint32_t>();
        l.mode = r.get_mode();
        l.automatic = r.get_bool();
        l.producer_slot = r.get<std::uint32_t>();
        l.peer_producer_slot = r.get<std::uint32_t>();
        m.links.push_back(std::move(l));
    }
    return m;
}

LinkUp read_link_up(Reader& r) {
    LinkUp m;
    m.link_id = r.get<std::uint64_t>();
    m.local_nic = r.get<std::uint32_t>();
    m.peer_vm = r.get_string(kMaxNameLength);
    m.peer_nic = r.get<std::uint32_t>();
    m.peer_mac = r.get_mac();
    m.peer_model = r.get_string(kMaxNameLength);
    m.mode = r.get_mode();
    m.automatic = r.get_bool();
    m.producer_slot = r.get<std::uint32_t>();
    m.peer_producer_slot = r.get<std::uint32_t>();
    m.peer_ram_size = r.get<std::uint64_t>();
    m.peer_window_size = r.get<std::uint64_t>();
    m.peer_rings_size = r.get<std::uint64_t>();
    m.peer_ram = r.get_fd();
    m.peer_state = r.get_fd();
    m.peer_window = r.get_fd();
    m.peer_rings = r.get_fd();
    m.peer_irq = r.get_fd();
    m.peer_doorbell = r.get_fd();
    m.peer_tx_irq = r.get_fd();
    return m;
}

Message read_body(Type type, Reader& r) {
    switch (type) {
        case Type::Register: return read_register(r);
        case Type::RegisterOk: return RegisterOk{};
        case Type::RegisterError: return RegisterError{r.get_string(4096)};
        case Type::LinkUp: return read_link_up(r);
        case Type::LinkDown: {
            LinkDown m;
            m.link_id = r.get<std::uint64_t>();
            m.local_nic = r.get<std::uint32_t>();
            m.reason = r.get_string(4096);
            return m;
        }
        case Type::FrameSeen: {
            FrameSeen m;
            m.nic = r.get<std::uint32_t>();
            m.dst = r.get_mac();
            return m;
        }
        case Type::StatusRequest: return StatusRequest{r.get_bool()};
        case Type::StatusReply: return StatusReply{r.get_string(kMaxPayloadSize - 4)};
        case Type::SetPeers: {
            SetPeers m;
            m.nic = r.get<std::uint32_t>();
            m.peers = read_peers(r);
            m.auto_peer = r.get_bool();
            return m;
        }
        case Type::SoundLinkUp: {
            SoundLinkUp m;
            m.local_card = r.get<std::uint32_t>();
            m.peer_vm = r.get_string(kMaxNameLength);
            m.peer_card = r.get<std::uint32_t>();
            m.peer_inbox = r.get_fd();
            return m;
        }
        case Type::SoundLinkDown: {
            SoundLinkDown m;
            m.local_card = r.get<std::uint32_t>();
            m.peer_vm = r.get_string(kMaxNameLength);
            m.reason = r.get_string(4096);
            m.refused = r.get_bool();
            return m;
        }
    }
    throw ProtocolError("unknown message type {}", static_cast<unsigned>(type));
}

}  // namespace

std::string_view to_string(LinkMode mode) { return mode == LinkMode::Window ? "window" : "copy"; }

std::string_view message_name(const Message& message) {
    static constexpr std::string_view names[] = {"Register",      "RegisterOk",  "RegisterError",
                                                 "LinkUp",        "LinkDown",    "FrameSeen",
                                                 "StatusRequest", "StatusReply", "SetPeers",
                                                 "SoundLinkUp",   "SoundLinkDown"};
    static_assert(std::size(names) == std::variant_size_v<Message>);
    return names[message.index()];
}

EncodedMessage encode(const Message& message) {
    Writer w;
    w.bytes.resize(kHeaderSize);
    Type type = std::visit([&](const auto& m) { return write_body(w, m); }, message);
    std::size_t payload = w.bytes.size() - kHeaderSize;
    if (payload > kMaxPayloadSize) throw ProtocolError("{} message of {} bytes is too large", message_name(message), payload);
    if (w.fds.size() > kMaxFdsPerMessage) throw ProtocolError("{} message carries too many fds", message_name(message));
    Header h{kProtocolMagic, kProtocolVersion, static_cast<std::uint16_t>(type), static_cast<std::uint32_t>(payload),
             static_cast<std::uint32_t>(w.fds.size())};
    std::memcpy(w.bytes.data(), &h, sizeof h);
    return EncodedMessage{std::move(w.bytes), std::move(w.fds)};
}

Message decode(std::span<const std::uint8_t> packet, std::vector<kvm::UniqueFd> fds) {
    if (packet.size() < kHeaderSize) throw ProtocolError("packet of {} bytes is shorter than a header", packet.size());
    Header h;
    std::memcpy(&h, packet.data(), sizeof h);
    if (h.magic != kProtocolMagic) throw ProtocolError("bad magic {:#x}", h.magic);
    if (h.version != kProtocolVersion)
        throw ProtocolError("peer speaks broker protocol version {}, this xover speaks {}", h.version, kProtocolVersion);
    if (h.payload_size != packet.size() - kHeaderSize)
        throw ProtocolError("header says {} payload bytes, packet has {}", h.payload_size, packet.size() - kHeaderSize);
    if (h.fd_count != fds.size()) throw ProtocolError("header says {} fds, {} attached", h.fd_count, fds.size());
    if (h.type < static_cast<std::uint16_t>(Type::Register) || h.type > static_cast<std::uint16_t>(Type::Last))
        throw ProtocolError("unknown message type {}", h.type);
    Reader r(packet.subspan(kHeaderSize), fds);
    Message m = read_body(static_cast<Type>(h.type), r);
    r.finish();
    return m;  // fds the message did not claim are closed with `fds`
}

bool send_message(int socket, const Message& message) {
    EncodedMessage e = encode(message);
    iovec iov{e.bytes.data(), e.bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<std::uint8_t> control;
    if (!e.fds.empty()) {
        control.resize(CMSG_SPACE(e.fds.size() * sizeof(int)));
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(e.fds.size() * sizeof(int));
        std::memcpy(CMSG_DATA(c), e.fds.data(), e.fds.size() * sizeof(int));
    }
    for (;;) {
        ssize_t n = ::sendmsg(socket, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n) == e.bytes.size();
        if (errno == EINTR) continue;
        return false;
    }
}

Received receive_message(int socket, bool dont_wait) {
    // One byte more than the largest valid packet, so an oversize packet is
    // seen as truncated rather than silently accepted.
    std::vector<std::uint8_t> buffer(kHeaderSize + kMaxPayloadSize + 1);
    alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(kMaxFdsPerMessage * sizeof(int))];
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | (dont_wait ? MSG_DONTWAIT : 0));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {Received::Status::WouldBlock, std::nullopt};
        if (errno == ECONNRESET || errno == EPIPE) return {Received::Status::Closed, std::nullopt};
        throw ProtocolError("recvmsg: {}", std::strerror(errno));
    }
    // Take ownership of every fd that arrived before any check can throw.
    std::vector<kvm::UniqueFd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds.emplace_back(fd);
        }
    }
    if (n == 0 && fds.empty()) return {Received::Status::Closed, std::nullopt};
    if (msg.msg_flags & MSG_CTRUNC) throw ProtocolError("too many fds attached (control data truncated)");
    if (msg.msg_flags & MSG_TRUNC || static_cast<std::size_t>(n) > kHeaderSize + kMaxPayloadSize)
        throw ProtocolError("packet larger than {} bytes", kHeaderSize + kMaxPayloadSize);
    return {Received::Status::Message, decode({buffer.data(), static_cast<std::size_t>(n)}, std::move(fds))};
}

std::pair<kvm::UniqueFd, kvm::UniqueFd> seqpacket_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw system_error("socketpair");
    return {kvm::UniqueFd(sv[0]), kvm::UniqueFd(sv[1])};
}

}  // namespace xover::crossover
