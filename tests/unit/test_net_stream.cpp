#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test_net_support.hpp"
#include "xover/error.hpp"
#include "xover/net/backend.hpp"

using xover::net::Backend;
using xover::test::counter;
using xover::test::FakeReceiver;
using xover::test::LoopThread;
using xover::test::test_frame;
using xover::test::wait_until;

namespace {

std::string listen_spec(std::uint16_t port) { return fmt::format("stream-listen:127.0.0.1:{}", port); }
std::string connect_spec(std::uint16_t port) { return fmt::format("stream-connect:127.0.0.1:{}", port); }

// A listener may linger briefly after its backend is destroyed (the loop
// closes it asynchronously), so creating its successor retries.
std::unique_ptr<Backend> make_listener(std::uint16_t port) {
    for (int i = 0;; ++i) {
        try {
            return xover::net::make_backend(listen_spec(port));
        } catch (const xover::Error&) {
            if (i == 100) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
}

// Sends every frame, waiting for tx_ready after Busy, as a NIC would. Runs
// on its own thread, so it reports failure instead of using Catch macros
// (which are not thread-safe).
struct LosslessSender {
    Backend& backend;
    std::atomic<bool>& ready;
    int busy = 0;
    bool send(const std::vector<std::uint8_t>& frame) {
        for (;;) {
            ready = false;
            auto result = backend.send(frame);
            if (result == Backend::SendResult::Sent) return true;
            if (result != Backend::SendResult::Busy) return false;
            ++busy;
            if (!wait_until([&] { return ready.load(); })) return false;
        }
    }
};

// A plain TCP client, standing in for QEMU on the far end.
struct RawClient {
    int fd = -1;
    explicit RawClient(std::uint16_t port, int rcvbuf = 0) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~RawClient() { ::close(fd); }
    void write_all(const std::vector<std::uint8_t>& bytes) {
        REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()));
    }
    bool read_exact(std::uint8_t* out, std::size_t n) {
        while (n > 0) {
            ssize_t got = ::recv(fd, out, n, 0);
            if (got <= 0) return false;
            out += got;
            n -= std::size_t(got);
        }
        return true;
    }
    std::vector<std::uint8_t> read_frame() {
        std::uint8_t header[4];
        if (!read_exact(header, 4)) return {};
        std::size_t length = std::size_t(header[0]) << 24 | header[1] << 16 | header[2] << 8 | header[3];
        std::vector<std::uint8_t> frame(length);
        if (!read_exact(frame.data(), length)) return {};
        return frame;
    }
    bool closed_by_peer() {
        char c;
        return ::recv(fd, &c, 1, 0) == 0;
    }
};

std::vector<std::uint8_t> with_length(const std::vector<std::uint8_t>& frame) {
    // Built by resize + copy: GCC 12 warns falsely (-Warray-bounds) on an
    // insert after a 4-byte initializer list.
    std::vector<std::uint8_t> out(4 + frame.size());
    for (int i = 0; i < 4; ++i) out[i] = std::uint8_t(frame.size() >> (24 - 8 * i));
    std::copy(frame.begin(), frame.end(), out.begin() + 4);
    return out;
}

}  // namespace

TEST_CASE("stream backend: listen/connect pair exchanges frames both ways", "[net][stream]") {
    auto port = xover::test::test_port(0);
    FakeReceiver rx_l, rx_c;
    LoopThread lt;
    auto listener = xover::net::make_backend(listen_spec(port));
    auto connector = xover::net::make_backend(connect_spec(port));
    listener->start(lt.loop(), rx_l, [] {});
    connector->start(lt.loop(), rx_c, [] {});
    REQUIRE(wait_until([&] { return counter(*listener, "connects") == 1 && counter(*connector, "connects") == 1; }));

    for (std::uint32_t i = 0; i < 300; ++i) {
        REQUIRE(connector->send(test_frame(i, 60 + i)) == Backend::SendResult::Sent);
        REQUIRE(listener->send(test_frame(5000 + i, 1514)) == Backend::SendResult::Sent);
    }
    REQUIRE(wait_until([&] { return rx_l.count() == 300 && rx_c.count() == 300; }));
    auto at_l = rx_l.frames();
    auto at_c = rx_c.frames();
    for (std::uint32_t i = 0; i < 300; ++i) {
        CHECK(at_l[i] == test_frame(i, 60 + i));
        CHECK(at_c[i] == test_frame(5000 + i, 1514));
    }
    CHECK(counter(*connector, "tx_frames") == 300);
    CHECK(counter(*listener, "rx_frames") == 300);
    CHECK(counter(*listener, "rx_dropped") == 0);
    CHECK(listener->link_up());
    CHECK(connector->describe() == connect_spec(port));
}

TEST_CASE("stream backend: wire format is a 4-byte big-endian length before each frame", "[net][stream]") {
    auto port = xover::test::test_port(1);
    FakeReceiver rx;
    LoopThread lt;
    auto backend = xover::net::make_backend(listen_spec(port));
    backend->start(lt.loop(), rx, [] {});
    RawClient peer(port);
    REQUIRE(wait_until([&] { return counter(*backend, "connects") == 1; }));

    // backend → peer
    auto frame = test_frame(77, 1000);
    REQUIRE(backend->send(frame) == Backend::SendResult::Sent);
    std::uint8_t header[4];
    REQUIRE(peer.read_exact(header, 4));
    CHECK(header[0] == 0);
    CHECK(header[1] == 0);
    CHECK(header[2] == 0x03);
    CHECK(header[3] == 0xe8);
    std::vector<std::uint8_t> body(1000);
    REQUIRE(peer.read_exact(body.data(), body.size()));
    CHECK(body == frame);

    // peer → backend: two frames in one write, then one split byte by byte,
    // then one whose header is split from its body, with an empty record between.
    auto a = with_length(test_frame(1, 64)), b = with_length(test_frame(2, 1514));
    std::vector<std::uint8_t> both = a;
    both.insert(both.end(), b.begin(), b.end());
    peer.write_all(both);
    auto c = with_length(test_frame(3, 100));
    for (auto byte : c) {
        peer.write_all({byte});
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    peer.write_all({0, 0, 0, 0});  // an empty record: skipped
    auto d = with_length(test_frame(4, 300));
    peer.write_all(std::vector<std::uint8_t>(d.begin(), d.begin() + 2));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    peer.write_all(std::vector<std::uint8_t>(d.begin() + 2, d.end()));

    REQUIRE(wait_until([&] { return rx.count() == 4; }));
    auto got = rx.frames();
    CHECK(got[0] == test_frame(1, 64));
    CHECK(got[1] == test_frame(2, 1514));
    CHECK(got[2] == test_frame(3, 100));
    CHECK(got[3] == test_frame(4, 300));
}

TEST_CASE("stream backend: an oversized length drops the connection, the next peer is accepted", "[net][stream]") {
    auto port = xover::test::test_port(2);
    FakeReceiver rx;
    LoopThread lt;
    auto backend = xover::net::make_backend(listen_spec(port));
    backend->start(lt.loop(), rx, [] {});
    {
        RawClient bad(port);
        bad.write_all({0x00, 0x10, 0x00, 0x00, 1, 2, 3});  // 1 MiB frame
        CHECK(bad.closed_by_peer());
    }
    REQUIRE(wait_until([&] { return counter(*backend, "protocol_errors") == 1; }));
    RawClient good(port);
    good.write_all(with_length(test_frame(5)));
    REQUIRE(wait_until([&] { return rx.count() == 1; }));
    CHECK(counter(*backend, "connects") == 2);
}

TEST_CASE("stream backend: a full NIC stops reading without losing frames", "[net][stream]") {
    auto port = xover::test::test_port(3);
    FakeReceiver rx_l, rx_c;
    LoopThread lt;
    std::atomic<bool> ready{false};
    auto listener = xover::net::make_backend(listen_spec(port));
    auto connector = xover::net::make_backend(connect_spec(port));
    listener->start(lt.loop(), rx_l, [] {});
    connector->start(lt.loop(), rx_c, [&] { ready = true; });
    REQUIRE(wait_until([&] { return counter(*listener, "connects") == 1 && counter(*connector, "connects") == 1; }));

    rx_l.accepting = false;
    // Enough to fill both sockets' buffers and the output buffer: the sender
    // must see Busy and resume on tx_ready, and nothing may be lost.
    constexpr std::uint32_t kFrames = 6000;
    std::atomic<bool> sent_all{false}, send_failed{false};
    int busy = 0;
    std::thread sender([&] {
        LosslessSender s{*connector, ready};
        for (std::uint32_t i = 0; i < kFrames && !send_failed; ++i)
            if (!s.send(test_frame(i, 1514))) send_failed = true;
        busy = s.busy;
        sent_all = true;
    });
    REQUIRE(wait_until([&] { return rx_l.refusals.load() >= 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(counter(*listener, "rx_stalls") == 1);
    CHECK(rx_l.count() == 0);
    CHECK(rx_l.refusals.load() == 1);  // it stopped trying: no busy loop
    // TCP pushes back until the sender's output buffer is full too.
    REQUIRE(wait_until([&] { return counter(*connector, "tx_busy") > 0 || sent_all.load(); }, std::chrono::seconds(20)));
    REQUIRE(counter(*connector, "tx_busy") > 0);
    CHECK(rx_l.refusals.load() == 1);

    // The guest returns buffers in small batches.
    int rounds = 0;
    while ((!sent_all.load() || rx_l.count() < kFrames) && !send_failed.load()) {
        rx_l.accepting = true;
        listener->rx_space_available();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        rx_l.accepting = false;
        listener->rx_space_available();  // a no-op when nothing is blocked
        if (rx_l.count() >= kFrames) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        REQUIRE(++rounds < 20000);
    }
    rx_l.accepting = true;
    listener->rx_space_available();
    sender.join();
    REQUIRE_FALSE(send_failed.load());
    REQUIRE(wait_until([&] { return rx_l.count() == kFrames; }));
    auto got = rx_l.frames();
    for (std::uint32_t i = 0; i < kFrames; ++i) REQUIRE(got[i] == test_frame(i, 1514));
    CHECK(busy > 0);
    CHECK(counter(*connector, "tx_busy") == std::uint64_t(busy));
    CHECK(counter(*connector, "tx_dropped") == 0);
    CHECK(counter(*listener, "rx_dropped") == 0);
    CHECK(counter(*listener, "rx_stalls") > 1);
}

TEST_CASE("stream backend: a peer that does not read makes send() Busy, then tx_ready", "[net][stream]") {
    auto port = xover::test::test_port(4);
    FakeReceiver rx;
    LoopThread lt;
    std::atomic<int> ready_calls{0};
    auto backend = xover::net::make_backend(listen_spec(port));
    backend->start(lt.loop(), rx, [&] { ++ready_calls; });
    RawClient peer(port, 4096);
    REQUIRE(wait_until([&] { return counter(*backend, "connects") == 1; }));

    std::uint32_t sent = 0;
    while (backend->send(test_frame(sent, 1514)) == Backend::SendResult::Sent) REQUIRE(++sent < 100000);
    CHECK(backend->send(test_frame(sent, 1514)) == Backend::SendResult::Busy);  // still busy, nothing taken
    CHECK(counter(*backend, "tx_busy") == 2);
    CHECK(ready_calls.load() == 0);

    // Reading everything the backend took: frames arrive whole, in order.
    for (std::uint32_t i = 0; i < sent; ++i) REQUIRE(peer.read_frame() == test_frame(i, 1514));
    REQUIRE(wait_until([&] { return ready_calls.load() == 1; }));
    CHECK(backend->send(test_frame(sent, 1514)) == Backend::SendResult::Sent);
    CHECK(peer.read_frame() == test_frame(sent, 1514));
}

TEST_CASE("stream backend: connect side drops while the peer is away and reconnects", "[net][stream]") {
    auto port = xover::test::test_port(5);
    FakeReceiver rx_l, rx_c;
    LoopThread lt;
    auto connector = xover::net::make_backend(connect_spec(port));
    connector->start(lt.loop(), rx_c, [] {});

    // Nobody listening yet: frames are dropped and counted, never Busy.
    REQUIRE(wait_until([&] { return counter(*connector, "connect_failures") >= 1; }));
    CHECK(connector->send(test_frame(1)) == Backend::SendResult::Dropped);
    CHECK(counter(*connector, "tx_dropped") == 1);
    CHECK_FALSE(connector->link_up());  // the cable's other end is unplugged

    {
        auto listener = make_listener(port);
        listener->start(lt.loop(), rx_l, [] {});
        REQUIRE(wait_until([&] { return counter(*connector, "connects") == 1; }));
        // connects is counted just before the link goes up: wait for both.
        REQUIRE(wait_until([&] { return connector->link_up() && rx_c.link_changes.load() == 1; }));
        REQUIRE(connector->send(test_frame(2)) == Backend::SendResult::Sent);
        REQUIRE(wait_until([&] { return rx_l.count() == 1; }));
    }  // the listening VM goes away

    REQUIRE(wait_until([&] { return counter(*connector, "disconnects") == 1; }));
    REQUIRE(wait_until([&] { return !connector->link_up() && rx_c.link_changes.load() == 2; }));
    CHECK(connector->send(test_frame(3)) == Backend::SendResult::Dropped);

    auto listener = make_listener(port);
    listener->start(lt.loop(), rx_l, [] {});
    REQUIRE(wait_until([&] { return counter(*connector, "connects") == 2; }));
    REQUIRE(connector->send(test_frame(4)) == Backend::SendResult::Sent);
    REQUIRE(listener->send(test_frame(5)) == Backend::SendResult::Sent);
    REQUIRE(wait_until([&] { return rx_l.count() == 2 && rx_c.count() == 1; }));
    CHECK(rx_l.frames()[1] == test_frame(4));
    CHECK(rx_c.frames()[0] == test_frame(5));
}

TEST_CASE("stream backend: listen side drops while no peer, accepts a new one", "[net][stream]") {
    auto port = xover::test::test_port(6);
    FakeReceiver rx;
    LoopThread lt;
    auto backend = xover::net::make_backend(listen_spec(port));
    backend->start(lt.loop(), rx, [] {});
    CHECK(backend->send(test_frame(0)) == Backend::SendResult::Dropped);
    {
        RawClient first(port);
        REQUIRE(wait_until([&] { return counter(*backend, "connects") == 1; }));
        REQUIRE(backend->send(test_frame(1)) == Backend::SendResult::Sent);
        CHECK(first.read_frame() == test_frame(1));
    }
    REQUIRE(wait_until([&] { return counter(*backend, "disconnects") == 1; }));
    CHECK(backend->send(test_frame(2)) == Backend::SendResult::Dropped);
    RawClient second(port);
    REQUIRE(wait_until([&] { return counter(*backend, "connects") == 2; }));
    REQUIRE(backend->send(test_frame(3)) == Backend::SendResult::Sent);
    CHECK(second.read_frame() == test_frame(3));
    CHECK(counter(*backend, "tx_dropped") == 2);
}

TEST_CASE("stream backend: a peer vanishing while send() is Busy answers with tx_ready", "[net][stream]") {
    auto port = xover::test::test_port(7);
    FakeReceiver rx;
    LoopThread lt;
    std::atomic<int> ready_calls{0};
    auto backend = xover::net::make_backend(listen_spec(port));
    backend->start(lt.loop(), rx, [&] { ++ready_calls; });
    std::uint32_t sent = 0;
    {
        RawClient peer(port, 4096);
        REQUIRE(wait_until([&] { return counter(*backend, "connects") == 1; }));
        while (backend->send(test_frame(sent, 1514)) == Backend::SendResult::Sent) REQUIRE(++sent < 100000);
    }
    REQUIRE(wait_until([&] { return ready_calls.load() == 1; }));
    CHECK(backend->send(test_frame(0)) == Backend::SendResult::Dropped);
    CHECK(counter(*backend, "tx_dropped") >= 1);
}

TEST_CASE("stream backend: listening on a port in use is a setup error", "[net][stream]") {
    auto port = xover::test::test_port(8);
    auto first = xover::net::make_backend(listen_spec(port));
    CHECK_THROWS_AS(xover::net::make_backend(listen_spec(port)), xover::Error);
}

TEST_CASE("stream backend: frames send() took still reach the peer when the backend goes away", "[net][stream]") {
    // The end of a sender VM's run: its guest was told every frame went
    // out, some of them still wait in the output buffer behind a slow
    // reader, and the VM exits. Those frames are not the peer's loss.
    auto port = xover::test::test_port(9);
    FakeReceiver rx;
    LoopThread lt;
    auto backend = xover::net::make_backend(listen_spec(port));
    backend->start(lt.loop(), rx, [] {});
    RawClient peer(port, 4096);
    REQUIRE(wait_until([&] { return counter(*backend, "connects") == 1; }));

    std::uint32_t sent = 0;
    while (backend->send(test_frame(sent, 1514)) == Backend::SendResult::Sent) REQUIRE(++sent < 100000);
    // The backend may wait for the peer while it goes away: read meanwhile.
    std::thread closer([&] { backend.reset(); });
    std::uint32_t received = 0;
    while (received < sent && peer.read_frame() == test_frame(received, 1514)) ++received;
    closer.join();
    CHECK(received == sent);
    CHECK(peer.closed_by_peer());
}
