// Broker protocol: every message survives a trip through a SOCK_SEQPACKET
// socket pair with its fds, and malformed packets are refused cleanly.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "test_crossover_util.hpp"
#include "xover/crossover/client.hpp"

using namespace xover::crossover;
using namespace xover::crossover::test;

namespace {

// Sends raw bytes (with optional fds) as one packet.
void send_raw(int sock, const std::vector<std::uint8_t>& bytes, std::vector<int> fds = {}) {
    iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<std::uint8_t> control(CMSG_SPACE(fds.size() * sizeof(int)));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    REQUIRE(::sendmsg(sock, &msg, 0) == static_cast<ssize_t>(bytes.size()));
}

int open_fd_count() {
    int n = 0;
    for (int fd = 0; fd < 1024; ++fd)
        if (::fcntl(fd, F_GETFD) >= 0) ++n;
    return n;
}

}  // namespace

TEST_CASE("Register round trip carries every field and the NICs' fds", "[crossover][protocol]") {
    FakeNic n0("a0"), n1("a1", 2 << 20);
    Register reg;
    reg.vm_name = "vm-a";
    reg.consent_group = "g1234";
    reg.nics.push_back(n0.registration(0, mac(1), {"vm-b", "vm-c"}));
    reg.nics.push_back(n1.registration(3, mac(2), {}, true, LinkMode::Window));
    reg.nics[1].window_size = 0;  // no window fd: encoded as "none"
    xover::kvm::UniqueFd tx_irq(::eventfd(0, EFD_CLOEXEC));
    reg.nics[0].tx_irq = dup_fd(tx_irq.get());

    Message m = round_trip(Message(std::move(reg)));
    REQUIRE(std::holds_alternative<Register>(m));
    auto& r = std::get<Register>(m);
    CHECK(r.vm_name == "vm-a");
    CHECK(r.consent_group == "g1234");
    REQUIRE(r.nics.size() == 2);
    CHECK(r.nics[0].index == 0);
    CHECK(r.nics[0].mac == mac(1));
    CHECK(r.nics[0].model == "e1000");
    CHECK(r.nics[0].peers == std::vector<std::string>{"vm-b", "vm-c"});
    CHECK_FALSE(r.nics[0].auto_peer);
    CHECK(r.nics[0].mode == LinkMode::Copy);
    CHECK(r.nics[0].ram_size == 1 << 20);
    CHECK(same_file(r.nics[0].ram.get(), n0.ram.get()));
    CHECK(same_file(r.nics[0].state.get(), n0.state.fd()));
    CHECK(same_file(r.nics[0].irq.get(), n0.irq.get()));
    CHECK(same_file(r.nics[0].doorbell.get(), n0.doorbell.get()));
    CHECK_FALSE(r.nics[0].window);
    CHECK(same_file(r.nics[0].tx_irq.get(), tx_irq.get()));
    CHECK_FALSE(r.nics[1].tx_irq);  // optional: an e1000 has one interrupt
    CHECK(r.nics[1].index == 3);
    CHECK(r.nics[1].auto_peer);
    CHECK(r.nics[1].mode == LinkMode::Window);
    CHECK(r.nics[1].ram_size == 2 << 20);
    CHECK(same_file(r.nics[1].ram.get(), n1.ram.get()));
    CHECK(same_file(r.nics[1].rings.get(), n1.rings.get()));
    CHECK(r.nics[1].rings_size == FakeNic::kRingBytes);
    CHECK_FALSE(r.nics[0].rings);
}

TEST_CASE("LinkUp round trip: the receiver can map the peer's memory", "[crossover][protocol]") {
    FakeNic peer("peer");
    LinkUp up;
    up.link_id = 77;
    up.local_nic = 1;
    up.peer_vm = "vm-b";
    up.peer_nic = 2;
    up.peer_mac = mac(9);
    up.peer_model = "virtio-net";
    up.mode = LinkMode::Window;
    up.automatic = true;
    up.producer_slot = 5;
    up.peer_producer_slot = 6;
    up.peer_ram_size = peer.ram_size;
    NicRegistration fds = peer.registration(0, mac(9), {"x"});
    up.peer_ram = std::move(fds.ram);
    up.peer_state = std::move(fds.state);
    up.peer_irq = std::move(fds.irq);
    up.peer_doorbell = std::move(fds.doorbell);
    up.peer_rings = dup_fd(peer.rings.get());
    up.peer_rings_size = FakeNic::kRingBytes;
    xover::kvm::UniqueFd tx_irq(::eventfd(0, EFD_CLOEXEC));
    up.peer_tx_irq = dup_fd(tx_irq.get());

    Message m = round_trip(Message(std::move(up)));
    auto& r = std::get<LinkUp>(m);
    CHECK(r.link_id == 77);
    CHECK(r.local_nic == 1);
    CHECK(r.peer_vm == "vm-b");
    CHECK(r.peer_nic == 2);
    CHECK(r.peer_mac == mac(9));
    CHECK(r.peer_model == "virtio-net");
    CHECK(r.mode == LinkMode::Window);
    CHECK(r.automatic);
    CHECK(r.producer_slot == 5);
    CHECK(r.peer_producer_slot == 6);
    CHECK(same_file(r.peer_tx_irq.get(), tx_irq.get()));
    CHECK(same_file(r.peer_rings.get(), peer.rings.get()));
    CHECK(r.peer_rings_size == FakeNic::kRingBytes);
    SharedMapping theirs(r.peer_ram.get(), r.peer_ram_size);
    SharedMapping ours(peer.ram.get(), peer.ram_size);
    std::memcpy(ours.data() + 4096, "crossover", 9);
    CHECK(std::memcmp(theirs.data() + 4096, "crossover", 9) == 0);
}

// A LinkUp as a broker would send it to the peer of `nic` (its RAM included).
static LinkUp link_up_from(const FakeNic& nic, LinkMode mode) {
    NicRegistration fds = nic.registration(0, mac(9), {"x"}, false, LinkMode::Window);
    LinkUp up;
    up.link_id = 5;
    up.peer_vm = "vm-b";
    up.mode = mode;
    up.peer_ram_size = nic.ram_size;
    up.peer_ram = std::move(fds.ram);
    up.peer_state = std::move(fds.state);
    up.peer_window_size = fds.window_size;
    up.peer_window = std::move(fds.window);
    up.peer_rings_size = fds.rings_size;
    up.peer_rings = std::move(fds.rings);
    return up;
}

TEST_CASE("PeerLink: a window link maps no RAM, whatever the broker sent", "[crossover][protocol]") {
    FakeNic peer("peer");
    SharedMapping ours(peer.ram.get(), peer.ram_size);
    std::memcpy(ours.data() + 4096, "secret", 6);

    auto window = PeerLink::from_message(link_up_from(peer, LinkMode::Window));
    CHECK(!window->peer_ram);
    CHECK(window->peer_memory.span(4096, 6).empty());
    CHECK(window->peer_rings.size() == FakeNic::kRingBytes);

    auto copy = PeerLink::from_message(link_up_from(peer, LinkMode::Copy));
    auto seen = copy->peer_memory.span(4096, 6);
    REQUIRE(seen.size() == 6);
    CHECK(std::memcmp(seen.data(), "secret", 6) == 0);

    SECTION("a copy link without RAM is refused") {
        LinkUp up = link_up_from(peer, LinkMode::Copy);
        up.peer_ram.reset();
        CHECK_THROWS_WITH(PeerLink::from_message(std::move(up)), Catch::Contains("without the peer's RAM"));
    }
    SECTION("a window link without the peer's ring area is refused") {
        LinkUp up = link_up_from(peer, LinkMode::Window);
        up.peer_rings.reset();
        CHECK_THROWS_WITH(PeerLink::from_message(std::move(up)), Catch::Contains("without the peer's window"));
    }
}

TEST_CASE("PeerLink: memory its owner could shrink under us is refused", "[crossover][protocol]") {
    FakeNic peer("peer");
    // Large enough, but the owner could truncate it later: our next access
    // would be SIGBUS.
    auto unsealed = [](std::uint64_t size) {
        xover::kvm::UniqueFd fd(::memfd_create("unsealed", MFD_CLOEXEC));
        REQUIRE(::ftruncate(fd.get(), off_t(size)) == 0);
        return fd;
    };
    LinkUp up = link_up_from(peer, LinkMode::Copy);
    SECTION("RAM") { up.peer_ram = unsealed(up.peer_ram_size); }
    SECTION("the state page") { up.peer_state = unsealed(xover::nic::kSharedStateSize); }
    SECTION("the ring area") {
        up.mode = LinkMode::Window;
        up.peer_rings = unsealed(up.peer_rings_size);
    }
    SECTION("the window") {
        up.mode = LinkMode::Window;
        up.peer_window = unsealed(up.peer_window_size);
    }
    CHECK_THROWS_WITH(PeerLink::from_message(std::move(up)), Catch::Contains("not sealed against shrinking"));
}

TEST_CASE("small messages round trip", "[crossover][protocol]") {
    CHECK(std::holds_alternative<RegisterOk>(round_trip(RegisterOk{})));
    CHECK(std::get<RegisterError>(round_trip(RegisterError{"MAC taken"})).reason == "MAC taken");
    auto down = std::get<LinkDown>(round_trip(LinkDown{12, 3, "VM 'b' left"}));
    CHECK((down.link_id == 12 && down.local_nic == 3 && down.reason == "VM 'b' left"));
    auto seen = std::get<FrameSeen>(round_trip(FrameSeen{2, mac(7)}));
    CHECK((seen.nic == 2 && seen.dst == mac(7)));
    CHECK(std::get<StatusRequest>(round_trip(StatusRequest{true})).json);
    CHECK(std::get<StatusReply>(round_trip(StatusReply{"VMs: 0\n"})).text == "VMs: 0\n");
    auto peers = std::get<SetPeers>(round_trip(SetPeers{4, {"vm-b", "vm-c"}, true}));
    CHECK((peers.nic == 4 && peers.peers == std::vector<std::string>{"vm-b", "vm-c"} && peers.auto_peer));
    CHECK(std::get<SetPeers>(round_trip(SetPeers{0, {}, false})).peers.empty());  // unlink from every peer
    CHECK(message_name(SetPeers{}) == "SetPeers");
}

TEST_CASE("SetPeers: a registration's limits on the peer list, on both ends", "[crossover][protocol]") {
    SetPeers many{0, std::vector<std::string>(kMaxPeersPerNic + 1, "p"), false};
    CHECK_THROWS_AS(encode(many), ProtocolError);
    CHECK_THROWS_AS(encode(SetPeers{0, {std::string(kMaxNameLength + 1, 'p')}, false}), ProtocolError);
    SetPeers full{0, std::vector<std::string>(kMaxPeersPerNic, std::string(kMaxNameLength, 'p')), false};
    CHECK(std::get<SetPeers>(round_trip(full)).peers == full.peers);

    // Within the limits on the encoder's side, then bytes altered.
    EncodedMessage e = encode(SetPeers{1, {"vm-b"}, false});
    const std::size_t count_at = kHeaderSize + 4;  // after the NIC index
    auto with = [&](std::size_t at, std::uint32_t value) {
        auto copy = e.bytes;
        std::memcpy(copy.data() + at, &value, 4);
        return copy;
    };
    CHECK_THROWS_AS(decode(with(count_at, kMaxPeersPerNic + 1), {}), ProtocolError);
    CHECK_THROWS_AS(decode(with(count_at, 2), {}), ProtocolError);                   // truncated
    CHECK_THROWS_AS(decode(with(count_at + 4, kMaxNameLength + 1), {}), ProtocolError);  // name too long
    CHECK_NOTHROW(decode(e.bytes, {}));
}

TEST_CASE("closed and empty sockets", "[crossover][protocol]") {
    auto [a, b] = seqpacket_pair();
    CHECK(receive_message(b.get()).status == Received::Status::WouldBlock);
    a.reset();
    CHECK(receive_message(b.get()).status == Received::Status::Closed);
    CHECK_FALSE(send_message(b.get(), RegisterOk{}));  // no SIGPIPE, just false
}

TEST_CASE("malformed packets are ProtocolErrors and leak no fds", "[crossover][protocol]") {
    auto [a, b] = seqpacket_pair();
    EncodedMessage good = encode(FrameSeen{1, mac(1)});
    int before = open_fd_count();

    SECTION("shorter than a header") { send_raw(a.get(), {1, 2, 3}); }
    SECTION("bad magic") {
        auto bytes = good.bytes;
        bytes[0] ^= 0xff;
        send_raw(a.get(), bytes);
    }
    SECTION("other protocol version") {
        auto bytes = good.bytes;
        bytes[4] = 99;
        send_raw(a.get(), bytes);
    }
    SECTION("unknown type") {
        auto bytes = good.bytes;
        bytes[6] = 200;
        send_raw(a.get(), bytes);
    }
    SECTION("payload shorter than declared") {
        auto bytes = good.bytes;
        bytes.pop_back();
        send_raw(a.get(), bytes);
    }
    SECTION("trailing bytes") {
        auto bytes = good.bytes;
        bytes.push_back(0);
        bytes[8] += 1;  // keep the length field consistent with the packet
        send_raw(a.get(), bytes);
    }
    SECTION("fds attached that the header does not declare") {
        FakeNic n("x");
        send_raw(a.get(), good.bytes, {n.irq.get(), n.doorbell.get()});
    }
    SECTION("fd index out of range") {
        FakeNic n("x");
        Register reg;
        reg.vm_name = "v";
        reg.nics.push_back(n.registration(0, mac(1), {"w"}));
        Message keep(std::move(reg));  // owns the fds while they are sent
        EncodedMessage e = encode(keep);
        // Declare and attach only 2 of the 4 fds the payload refers to.
        std::uint32_t two = 2;
        std::memcpy(e.bytes.data() + 12, &two, 4);
        e.fds.resize(2);
        send_raw(a.get(), e.bytes, e.fds);
    }
    SECTION("oversize string length") {
        EncodedMessage e = encode(RegisterError{"x"});
        std::uint32_t huge = 0x7fffffff;
        std::memcpy(e.bytes.data() + kHeaderSize, &huge, 4);
        send_raw(a.get(), e.bytes);
    }
    SECTION("bad boolean") {
        EncodedMessage e = encode(StatusRequest{false});
        e.bytes[kHeaderSize] = 7;
        send_raw(a.get(), e.bytes);
    }
    CHECK_THROWS_AS(receive_message(b.get()), ProtocolError);
    CHECK(open_fd_count() <= before + 0);
}

TEST_CASE("encode refuses fields beyond the limits", "[crossover][protocol]") {
    Register reg;
    reg.vm_name = std::string(kMaxNameLength + 1, 'x');
    CHECK_THROWS_AS(encode(Message(std::move(reg))), ProtocolError);
    Register many;
    many.vm_name = "v";
    many.nics.resize(kMaxNicsPerVm + 1);
    CHECK_THROWS_AS(encode(Message(std::move(many))), ProtocolError);
}

TEST_CASE("Register again: the live links and the count of earlier registrations survive the trip",
          "[crossover][protocol]") {
    FakeNic n0("a0");
    Register reg;
    reg.vm_name = "vm-a";
    reg.nics.push_back(n0.registration(0, mac(1), {"vm-b"}));
    reg.earlier_registrations = 2;
    reg.links.push_back(LiveLink{41, 0, "vm-b", 3, LinkMode::Window, false, 2, 7});
    reg.links.push_back(LiveLink{42, 0, "vm-c", 0, LinkMode::Copy, true, 0, 1});
    Message m = round_trip(Message(std::move(reg)));
    auto& r = std::get<Register>(m);
    CHECK(r.earlier_registrations == 2);
    REQUIRE(r.links.size() == 2);
    CHECK(r.links[0] == LiveLink{41, 0, "vm-b", 3, LinkMode::Window, false, 2, 7});
    CHECK(r.links[1] == LiveLink{42, 0, "vm-c", 0, LinkMode::Copy, true, 0, 1});
    CHECK(same_file(r.nics[0].ram.get(), n0.ram.get()));
}

TEST_CASE("Register again: too many live links or a bad field is refused", "[crossover][protocol]") {
    Register many;
    many.vm_name = "v";
    many.links.resize(kMaxLiveLinksPerVm + 1);
    CHECK_THROWS_AS(encode(Message(std::move(many))), ProtocolError);

    // Within the limit on the encoder's side, then bytes altered: the
    // decoder checks the count itself, and every field.
    Register one;
    one.vm_name = "v";
    one.links.push_back(LiveLink{1, 0, "w", 0, LinkMode::Copy, false, 0, 0});
    EncodedMessage e = encode(Message(std::move(one)));
    // Payload: name (4+1), group (4), NIC count (4), sound count (4), earlier (4), link count (4), then the link.
    const std::size_t count_at = kHeaderSize + 5 + 4 + 4 + 4 + 4;
    auto with = [&](std::size_t at, std::vector<std::uint8_t> bytes) {
        auto copy = e.bytes;
        std::copy(bytes.begin(), bytes.end(), copy.begin() + at);
        return copy;
    };
    auto refused = [](const std::vector<std::uint8_t>& bytes) {
        CHECK_THROWS_AS(decode(bytes, {}), ProtocolError);
    };
    const auto too_many = static_cast<std::uint32_t>(kMaxLiveLinksPerVm + 1);
    refused(with(count_at, {std::uint8_t(too_many), std::uint8_t(too_many >> 8), 0, 0}));
    refused(with(count_at, {2, 0, 0, 0}));                       // truncated
    const std::size_t mode_at = count_at + 4 + 8 + 4 + (4 + 1) + 4;
    refused(with(mode_at, {2}));                                 // no such link mode
    refused(with(mode_at + 1, {2}));                             // a boolean of 2
    CHECK_NOTHROW(decode(e.bytes, {}));
}

TEST_CASE("dup_for_broker copies every field of a NIC registration, each fd a duplicate", "[crossover][protocol]") {
    FakeNic n("d");
    NicRegistration reg = n.registration(2, mac(3), {"p", "q"}, true, LinkMode::Window);
    reg.tx_irq = xover::kvm::UniqueFd(::eventfd(0, EFD_CLOEXEC));
    NicRegistration copy = dup_for_broker(reg);
    // Encoded side by side: the same bytes (every value field), and fds
    // that are new numbers for the same files, in the same places.
    Register original{"vm", "", {}}, duplicate{"vm", "", {}};
    original.nics.push_back(std::move(reg));
    duplicate.nics.push_back(std::move(copy));
    Message ma(std::move(original)), mb(std::move(duplicate));  // they own the fds encode() lists
    EncodedMessage a = encode(ma), b = encode(mb);
    CHECK(a.bytes == b.bytes);
    REQUIRE(a.fds.size() == b.fds.size());
    CHECK(a.fds.size() == 7);  // ram, state, window, rings, irq, doorbell, tx_irq
    for (std::size_t i = 0; i < a.fds.size(); ++i) {
        CHECK(a.fds[i] != b.fds[i]);
        CHECK(same_file(a.fds[i], b.fds[i]));
    }
}
