// vhost-user messages: every payload kind survives a trip through a
// SOCK_STREAM socket pair with its fds, and every malformed message from a
// hostile front-end is a ProtocolError that leaks no fd.
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <limits>

#include "xover/vhost_user/messages.hpp"

using namespace xover::vhost_user;
using xover::kvm::UniqueFd;
using Catch::Matchers::Contains;

namespace {

struct SocketPair {
    UniqueFd front;  // the (test's) front-end
    UniqueFd back;   // the back-end under test
};

SocketPair socket_pair() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// Each memfd is its own inode, so a received fd can be matched to the one sent.
UniqueFd memfd(std::size_t size = 4096) {
    UniqueFd fd(::memfd_create("xover-vhost-test", MFD_CLOEXEC));
    REQUIRE(fd);
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
    return fd;
}

bool same_file(int a, int b) {
    struct stat sa, sb;
    REQUIRE(::fstat(a, &sa) == 0);
    REQUIRE(::fstat(b, &sb) == 0);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int open_fd_count() {
    int n = 0;
    for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

void send_raw(int socket, std::span<const std::uint8_t> bytes) {
    REQUIRE(::send(socket, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

Message receive(int socket) {
    std::optional<Message> m = read_message(socket);
    REQUIRE(m.has_value());
    return std::move(*m);
}

std::uint32_t req(Request r) { return static_cast<std::uint32_t>(r); }

// `n` regions with distinct, valid addresses.
std::vector<MemoryRegion> regions(std::size_t n) {
    std::vector<MemoryRegion> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back({i << 30, 1 << 20, 0x7f0000000000 + (i << 30), 0});
    return out;
}

// A hostile front-end: `send` writes to the front end of a fresh socket
// pair (and closes whatever fds it opened), then the back-end's read (and
// `decode`, if the read passes) must throw ProtocolError and leave no fd
// behind.
template <typename Send, typename Decode>
void expect_refused(Send send, Decode decode) {
    SocketPair p = socket_pair();
    int before = open_fd_count();
    send(p.front.get());
    REQUIRE_THROWS_AS(decode(receive(p.back.get())), ProtocolError);
    CHECK(open_fd_count() == before);
}

template <typename Send>
void expect_refused(Send send) {
    expect_refused(send, [](Message&&) {});
}

}  // namespace

TEST_CASE("fmt_request names requests as the spec does", "[vhost-user]") {
    CHECK(fmt_request(req(Request::GetFeatures)) == "GET_FEATURES");
    CHECK(fmt_request(req(Request::SetMemTable)) == "SET_MEM_TABLE");
    CHECK(fmt_request(req(Request::SetVringAddr)) == "SET_VRING_ADDR");
    CHECK(fmt_request(req(Request::SetBackendReqFd)) == "SET_BACKEND_REQ_FD");
    CHECK(fmt_request(req(Request::RemMemReg)) == "REM_MEM_REG");
    CHECK(fmt_request(99) == "request 99");
}

TEST_CASE("encode_request lays out the 12-byte header in native order", "[vhost-user]") {
    std::vector<std::uint8_t> payload{1, 2, 3};
    auto bytes = encode_request(9, kVersion | kFlagNeedReply, payload);
    REQUIRE(bytes.size() == kHeaderSize + 3);
    std::uint32_t h[3];
    std::memcpy(h, bytes.data(), sizeof h);
    CHECK(h[0] == 9);
    CHECK(h[1] == (kVersion | kFlagNeedReply));
    CHECK(h[2] == 3);
    CHECK(bytes[12] == 1);
    CHECK(bytes[14] == 3);
}

TEST_CASE("u64 payloads round trip", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetFeatures), encode_u64(0x1'4000'0000ull));
    Message m = receive(p.back.get());
    CHECK(m.request == req(Request::SetFeatures));
    CHECK((m.flags & kFlagVersionMask) == kVersion);
    CHECK_FALSE(m.need_reply());
    CHECK(m.fds.empty());
    CHECK(decode_u64(m) == 0x1'4000'0000ull);
}

TEST_CASE("a request without payload reads as an empty payload", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::GetFeatures), {});
    Message m = receive(p.back.get());
    CHECK(m.request == req(Request::GetFeatures));
    CHECK(m.payload.empty());
    REQUIRE_THROWS_AS(decode_u64(m), ProtocolError);
}

TEST_CASE("need_reply reflects the header's bit 3", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetVringNum), encode_vring_state({0, 256}), {}, kFlagNeedReply);
    Message m = receive(p.back.get());
    CHECK(m.need_reply());
    CHECK((m.flags & kFlagVersionMask) == kVersion);
}

TEST_CASE("vring state round trips", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetVringBase), encode_vring_state({1, 0xfffe}));
    Message m = receive(p.back.get());
    VringState s = decode_vring_state(m);
    CHECK(s.index == 1);
    CHECK(s.num == 0xfffe);
}

TEST_CASE("vring address round trips", "[vhost-user]") {
    VringAddress a;
    a.index = 1;
    a.flags = 0;
    a.desc_user_addr = 0x7f00'0000'1000;
    a.used_user_addr = 0x7f00'0000'3000;
    a.avail_user_addr = 0x7f00'0000'2000;
    a.log_guest_addr = 0xdead'0000;
    REQUIRE(encode_vring_address(a).size() == 40);
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetVringAddr), encode_vring_address(a));
    VringAddress b = decode_vring_address(receive(p.back.get()));
    CHECK(b.index == a.index);
    CHECK(b.flags == a.flags);
    CHECK(b.desc_user_addr == a.desc_user_addr);
    CHECK(b.used_user_addr == a.used_user_addr);
    CHECK(b.avail_user_addr == a.avail_user_addr);
    CHECK(b.log_guest_addr == a.log_guest_addr);
}

TEST_CASE("memory table round trips with its fds in order", "[vhost-user]") {
    std::vector<UniqueFd> files;
    std::vector<int> raw;
    for (int i = 0; i < 3; ++i) {
        files.push_back(memfd());
        raw.push_back(files.back().get());
    }
    auto sent = regions(3);
    sent[1].mmap_offset = 0x2000;
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetMemTable), encode_memory_table(sent), raw);
    Message m = receive(p.back.get());
    REQUIRE(m.fds.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(same_file(m.fds[i].get(), raw[i]));
    auto got = decode_memory_table(m);
    REQUIRE(got.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(got[i].guest_phys_addr == sent[i].guest_phys_addr);
        CHECK(got[i].memory_size == sent[i].memory_size);
        CHECK(got[i].userspace_addr == sent[i].userspace_addr);
        CHECK(got[i].mmap_offset == sent[i].mmap_offset);
    }
}

TEST_CASE("memory table sized for 8 regions with fewer in use is accepted", "[vhost-user]") {
    // Older front-ends send the whole fixed-size array.
    auto payload = encode_memory_table(regions(8));
    std::uint32_t two = 2;
    std::memcpy(payload.data(), &two, sizeof two);
    UniqueFd a = memfd(), b = memfd();
    int raw[] = {a.get(), b.get()};
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetMemTable), payload, raw);
    auto got = decode_memory_table(receive(p.back.get()));
    REQUIRE(got.size() == 2);
    CHECK(got[1].guest_phys_addr == 1ull << 30);
}

TEST_CASE("vring kick carries its fd, bit 8 means none", "[vhost-user]") {
    SocketPair p = socket_pair();
    UniqueFd kick = memfd();
    int raw[] = {kick.get()};
    send_request(p.front.get(), req(Request::SetVringKick), encode_u64(1), raw);
    send_request(p.front.get(), req(Request::SetVringCall), encode_u64(0 | kVringNoFd));

    Message m = receive(p.back.get());
    VringFd k = decode_vring_fd(m);
    CHECK(k.index == 1);
    REQUIRE(k.fd);
    CHECK(same_file(k.fd.get(), kick.get()));
    CHECK(m.fds.empty());

    Message n = receive(p.back.get());
    VringFd c = decode_vring_fd(n);
    CHECK(c.index == 0);
    CHECK_FALSE(c.fd);
}

TEST_CASE("replies round trip and are checked by read_reply", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_reply_u64(p.back.get(), req(Request::GetFeatures), 0x4000'0000);
    auto payload = read_reply(p.front.get(), req(Request::GetFeatures));
    REQUIRE(payload.size() == 8);
    std::uint64_t v;
    std::memcpy(&v, payload.data(), 8);
    CHECK(v == 0x4000'0000);

    std::vector<std::uint8_t> state = encode_vring_state({1, 7});
    send_reply(p.back.get(), req(Request::GetVringBase), state);
    CHECK(read_reply(p.front.get(), req(Request::GetVringBase)) == state);

    send_reply_u64(p.back.get(), req(Request::GetProtocolFeatures), 0);
    CHECK_THROWS_AS(read_reply(p.front.get(), req(Request::GetFeatures)), ProtocolError);
}

TEST_CASE("read_reply refuses a message without the reply bit and a closed socket", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_request(p.back.get(), req(Request::GetFeatures), encode_u64(0));
    CHECK_THROWS_AS(read_reply(p.front.get(), req(Request::GetFeatures)), ProtocolError);
    SocketPair q = socket_pair();
    q.back.reset();
    CHECK_THROWS_AS(read_reply(q.front.get(), req(Request::GetFeatures)), ProtocolError);
}

TEST_CASE("several messages queued back to back are read one at a time", "[vhost-user]") {
    SocketPair p = socket_pair();
    UniqueFd f = memfd();
    int raw[] = {f.get()};
    send_request(p.front.get(), req(Request::SetOwner), {});
    send_request(p.front.get(), req(Request::SetVringCall), encode_u64(2), raw);
    send_request(p.front.get(), req(Request::SetVringNum), encode_vring_state({2, 128}));
    Message a = receive(p.back.get());
    Message b = receive(p.back.get());
    Message c = receive(p.back.get());
    CHECK(a.request == req(Request::SetOwner));
    CHECK(a.fds.empty());
    CHECK(b.fds.size() == 1);
    CHECK(c.fds.empty());
    CHECK(decode_vring_state(c).num == 128);
}

TEST_CASE("a message sent in pieces is reassembled", "[vhost-user]") {
    SocketPair p = socket_pair();
    auto bytes = encode_request(req(Request::SetVringAddr), kVersion, encode_vring_address({}));
    for (std::uint8_t b : bytes) send_raw(p.front.get(), {&b, 1});
    Message m = receive(p.back.get());
    CHECK(m.payload.size() == 40);
}

TEST_CASE("a clean close before a header reads as nullopt", "[vhost-user]") {
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetOwner), {});
    p.front.reset();
    CHECK(read_message(p.back.get()).has_value());
    CHECK_FALSE(read_message(p.back.get()).has_value());
}

TEST_CASE("a close inside the header or the payload is a ProtocolError", "[vhost-user]") {
    SECTION("inside the header") {
        SocketPair p = socket_pair();
        auto bytes = encode_request(req(Request::SetFeatures), kVersion, encode_u64(1));
        send_raw(p.front.get(), std::span(bytes).first(5));
        p.front.reset();
        CHECK_THROWS_AS(read_message(p.back.get()), ProtocolError);
    }
    SECTION("inside the payload, with fds that must not leak") {
        SocketPair p = socket_pair();
        int before = open_fd_count();
        {
            auto bytes = encode_request(req(Request::SetMemTable), kVersion, encode_memory_table(regions(2)));
            UniqueFd a = memfd(), b = memfd();
            int raw[] = {a.get(), b.get()};
            // The header and part of the payload, with the fds, then close.
            msghdr msg{};
            iovec iov{bytes.data(), kHeaderSize + 10};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof raw)]{};
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof raw);
            std::memcpy(CMSG_DATA(c), raw, sizeof raw);
            REQUIRE(::sendmsg(p.front.get(), &msg, 0) == static_cast<ssize_t>(kHeaderSize + 10));
        }
        p.front.reset();
        CHECK_THROWS_WITH(read_message(p.back.get()), Contains("SET_MEM_TABLE") && Contains("closed"));
        CHECK(open_fd_count() == before - 1);  // the front end was closed
    }
}

TEST_CASE("hostile headers are refused without leaking fds", "[vhost-user]") {
    SECTION("version 0") {
        expect_refused([](int s) { send_raw(s, encode_request(req(Request::SetOwner), 0, {})); });
    }
    SECTION("version 3") {
        expect_refused([](int s) { send_request(s, req(Request::SetOwner), {}, {}, 0x2); });
    }
    SECTION("reply bit on a request") {
        expect_refused([](int s) { send_request(s, req(Request::SetFeatures), encode_u64(0), {}, kFlagReply); });
    }
    SECTION("reply bit on a request carrying fds") {
        expect_refused([](int s) {
            UniqueFd f = memfd();
            int raw[] = {f.get()};
            send_request(s, req(Request::SetVringKick), encode_u64(0), raw, kFlagReply);
        });
    }
    SECTION("payload larger than the cap") {
        expect_refused([](int s) {
            std::vector<std::uint8_t> big(kMaxPayloadSize + 1);
            send_request(s, req(Request::SetConfig), big);
        });
    }
    SECTION("size field far beyond the cap, no payload behind it") {
        expect_refused([](int s) {
            std::uint32_t h[3] = {req(Request::SetFeatures), kVersion, 0xffff'ffff};
            send_raw(s, {reinterpret_cast<std::uint8_t*>(h), sizeof h});
        });
    }
    SECTION("payload larger than the request's own") {
        expect_refused([](int s) { send_request(s, req(Request::SetVringNum), encode_vring_address({})); });
    }
    SECTION("more fds than any message may carry") {
        expect_refused([](int s) {
            std::vector<UniqueFd> files;
            std::vector<int> raw;
            for (std::size_t i = 0; i < kMaxFdsPerMessage + 1; ++i) {
                files.push_back(memfd());
                raw.push_back(files.back().get());
            }
            send_request(s, req(Request::SetMemTable), encode_memory_table(regions(8)), raw);
        });
    }
    SECTION("so many fds that the control data is truncated") {
        expect_refused([](int s) {
            std::vector<UniqueFd> files;
            std::vector<int> raw;
            for (int i = 0; i < 40; ++i) {
                files.push_back(memfd());
                raw.push_back(files.back().get());
            }
            send_request(s, req(Request::SetMemTable), encode_memory_table(regions(8)), raw);
        });
    }
    SECTION("an fd on a request that carries none") {
        expect_refused([](int s) {
            UniqueFd f = memfd();
            int raw[] = {f.get()};
            send_request(s, req(Request::GetFeatures), {}, raw);
        });
    }
    SECTION("two fds on a vring kick") {
        expect_refused([](int s) {
            UniqueFd a = memfd(), b = memfd();
            int raw[] = {a.get(), b.get()};
            send_request(s, req(Request::SetVringKick), encode_u64(0), raw);
        });
    }
}

TEST_CASE("a refused message leaves the stream usable up to the refusal", "[vhost-user]") {
    // The header is refused before its payload is read: the session must
    // close the connection, but the message before it was intact.
    SocketPair p = socket_pair();
    send_request(p.front.get(), req(Request::SetOwner), {});
    send_request(p.front.get(), req(Request::SetOwner), {}, {}, kFlagReply);
    CHECK(receive(p.back.get()).request == req(Request::SetOwner));
    CHECK_THROWS_WITH(read_message(p.back.get()), Contains("SET_OWNER") && Contains("reply"));
}

TEST_CASE("hostile memory tables are refused without leaking fds", "[vhost-user]") {
    auto send_table = [](std::vector<MemoryRegion> table, std::size_t fd_count) {
        return [table, fd_count](int s) {
            std::vector<UniqueFd> files;
            std::vector<int> raw;
            for (std::size_t i = 0; i < fd_count; ++i) {
                files.push_back(memfd());
                raw.push_back(files.back().get());
            }
            send_request(s, req(Request::SetMemTable), encode_memory_table(table), raw);
        };
    };
    auto decode = [](Message&& m) { decode_memory_table(m); };

    SECTION("0 regions") { expect_refused(send_table({}, 0), decode); }
    SECTION("9 regions, 8 fds") { expect_refused(send_table(regions(9), 8), decode); }
    SECTION("fewer fds than regions") { expect_refused(send_table(regions(2), 1), decode); }
    SECTION("more fds than regions") { expect_refused(send_table(regions(2), 3), decode); }
    SECTION("an empty region") {
        auto t = regions(2);
        t[1].memory_size = 0;
        expect_refused(send_table(t, 2), decode);
    }
    SECTION("a region whose guest addresses wrap") {
        auto t = regions(1);
        t[0].guest_phys_addr = 0xffff'ffff'ffff'f000;
        t[0].memory_size = 0x2000;
        expect_refused(send_table(t, 1), decode);
    }
    SECTION("a region whose user addresses wrap") {
        auto t = regions(1);
        t[0].userspace_addr = std::numeric_limits<std::uint64_t>::max();
        expect_refused(send_table(t, 1), decode);
    }
    SECTION("a region whose mmap offset wraps") {
        auto t = regions(1);
        t[0].mmap_offset = 0xffff'ffff'ffff'f000;
        expect_refused(send_table(t, 1), decode);
    }
    SECTION("a count larger than the payload") {
        expect_refused(
            [](int s) {
                auto payload = encode_memory_table(regions(1));
                std::uint32_t three = 3;
                std::memcpy(payload.data(), &three, sizeof three);
                UniqueFd a = memfd(), b = memfd(), c = memfd();
                int raw[] = {a.get(), b.get(), c.get()};
                send_request(s, req(Request::SetMemTable), payload, raw);
            },
            decode);
    }
    SECTION("a payload shorter than the count header") {
        expect_refused(
            [](int s) {
                std::vector<std::uint8_t> four(4);
                send_request(s, req(Request::SetMemTable), four);
            },
            decode);
    }
}

TEST_CASE("memory table refusals name the request and the count", "[vhost-user]") {
    Message m;
    m.request = req(Request::SetMemTable);
    m.flags = kVersion;
    m.payload = encode_memory_table(regions(9));
    CHECK_THROWS_WITH(decode_memory_table(m), Contains("SET_MEM_TABLE: 9 regions, at most 8"));
    m.payload = encode_memory_table({});
    CHECK_THROWS_WITH(decode_memory_table(m), Contains("SET_MEM_TABLE"));
}

TEST_CASE("hostile vring fds are refused without leaking fds", "[vhost-user]") {
    auto decode = [](Message&& m) { decode_vring_fd(m); };
    SECTION("bit 8 set and an fd") {
        expect_refused(
            [](int s) {
                UniqueFd f = memfd();
                int raw[] = {f.get()};
                send_request(s, req(Request::SetVringCall), encode_u64(kVringNoFd | 1), raw);
            },
            decode);
    }
    SECTION("bit 8 clear and no fd") {
        expect_refused([](int s) { send_request(s, req(Request::SetVringKick), encode_u64(1)); }, decode);
    }
    SECTION("bits above 8") {
        expect_refused(
            [](int s) {
                UniqueFd f = memfd();
                int raw[] = {f.get()};
                send_request(s, req(Request::SetVringErr), encode_u64((1ull << 9) | 1), raw);
            },
            decode);
    }
    SECTION("high bits with bit 8") {
        expect_refused(
            [](int s) { send_request(s, req(Request::SetVringKick), encode_u64((1ull << 63) | kVringNoFd)); },
            decode);
    }
    SECTION("a short payload") {
        expect_refused(
            [](int s) {
                UniqueFd f = memfd();
                int raw[] = {f.get()};
                std::vector<std::uint8_t> four(4);
                send_request(s, req(Request::SetVringKick), four, raw);
            },
            decode);
    }
}

TEST_CASE("fixed-size decoders refuse any other size", "[vhost-user]") {
    Message m;
    m.request = req(Request::SetVringAddr);
    m.payload.resize(39);
    CHECK_THROWS_WITH(decode_vring_address(m), Contains("SET_VRING_ADDR"));
    m.payload.resize(41);
    CHECK_THROWS_AS(decode_vring_address(m), ProtocolError);
    m.request = req(Request::SetVringNum);
    m.payload.resize(4);
    CHECK_THROWS_AS(decode_vring_state(m), ProtocolError);
    m.request = req(Request::SetFeatures);
    m.payload.resize(16);
    CHECK_THROWS_AS(decode_u64(m), ProtocolError);
}

TEST_CASE("GET_CONFIG: the access round trips, a reply carries the header and the bytes", "[vhost-user]") {
    SocketPair p = socket_pair();
    std::vector<std::uint8_t> payload = encode_config({.offset = 4, .size = 8, .flags = 0}, std::vector<std::uint8_t>(8));
    send_request(p.front.get(), req(Request::GetConfig), payload);
    ConfigAccess a = decode_config_access(receive(p.back.get()));
    CHECK(a.offset == 4);
    CHECK(a.size == 8);
    std::vector<std::uint8_t> bytes{1, 2, 3};
    auto reply = encode_config(a, bytes);
    REQUIRE(reply.size() == 12 + 3);
    std::uint32_t h[3];
    std::memcpy(h, reply.data(), sizeof h);
    CHECK(h[0] == 4);
    CHECK(h[1] == 3);
    CHECK(reply[12] == 1);
}

TEST_CASE("GET_CONFIG: a size past the limit or a payload that disagrees is refused", "[vhost-user]") {
    auto send_config = [](std::uint32_t size, std::size_t payload_bytes) {
        return [=](int s) {
            std::vector<std::uint8_t> payload(payload_bytes, 0);
            std::uint32_t h[3] = {0, size, 0};
            std::memcpy(payload.data(), h, std::min(payload_bytes, sizeof h));
            send_request(s, req(Request::GetConfig), payload);
        };
    };
    auto decode = [](Message&& m) { decode_config_access(m); };
    expect_refused(send_config(kMaxConfigSize + 1, 12 + kMaxConfigSize + 1));  // read_message's cap
    expect_refused(send_config(300, 12), decode);
    expect_refused(send_config(8, 12 + 4), decode);
    expect_refused(send_config(0, 8), decode);
}
