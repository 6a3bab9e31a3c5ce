// Broker protocol, sound cards: a Register's sound cards, SoundLinkUp and
// SoundLinkDown survive a SOCK_SEQPACKET trip with their fds, and every
// limit holds on both ends.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>

#include "test_crossover_util.hpp"

using namespace xover::crossover;
using namespace xover::crossover::test;
using xover::kvm::UniqueFd;

namespace {

SoundRegistration sound(std::uint32_t index, std::string peer, const UniqueFd& inbox, std::uint32_t rate = 48000,
                        std::uint32_t channels = 2) {
    return SoundRegistration{index, std::move(peer), rate, channels, inbox ? dup_fd(inbox.get()) : UniqueFd{}};
}

std::vector<std::uint8_t> with_u32(std::vector<std::uint8_t> bytes, std::size_t at, std::uint32_t value) {
    std::memcpy(bytes.data() + at, &value, 4);
    return bytes;
}

// Payload offsets of a Register named "v" with no NICs: name (4+1), group
// (4), NIC count (4), then the sound count and the first card.
constexpr std::size_t kSoundCountAt = kHeaderSize + 5 + 4 + 4;
constexpr std::size_t kFirstCardAt = kSoundCountAt + 4;

}  // namespace

TEST_CASE("sound: Register carries its sound cards and their inboxes, between the NICs and the live links",
          "[crossover][sound][protocol]") {
    FakeNic n0("a0");
    UniqueFd in0 = create_sealed_memfd("in0", 4096), in2 = create_sealed_memfd("in2", 8192);
    Register reg;
    reg.vm_name = "vm-a";
    reg.consent_group = "g";
    reg.nics.push_back(n0.registration(0, mac(1), {"vm-b"}));
    reg.sounds.push_back(sound(0, "vm-b", in0, 48000, 2));
    reg.sounds.push_back(sound(2, "vm-c", in2, 44100, 1));
    reg.earlier_registrations = 3;
    reg.links.push_back(LiveLink{5, 0, "vm-b", 0, LinkMode::Copy, false, 1, 2});

    Message m = round_trip(Message(std::move(reg)));
    auto& r = std::get<Register>(m);
    CHECK(r.vm_name == "vm-a");
    REQUIRE(r.nics.size() == 1);
    CHECK(same_file(r.nics[0].ram.get(), n0.ram.get()));
    REQUIRE(r.sounds.size() == 2);
    CHECK(r.sounds[0].index == 0);
    CHECK(r.sounds[0].peer == "vm-b");
    CHECK(r.sounds[0].rate == 48000);
    CHECK(r.sounds[0].channels == 2);
    CHECK(same_file(r.sounds[0].inbox.get(), in0.get()));
    CHECK(r.sounds[1].index == 2);
    CHECK(r.sounds[1].peer == "vm-c");
    CHECK(r.sounds[1].rate == 44100);
    CHECK(r.sounds[1].channels == 1);
    CHECK(same_file(r.sounds[1].inbox.get(), in2.get()));
    CHECK(r.earlier_registrations == 3);
    REQUIRE(r.links.size() == 1);
    CHECK(r.links[0] == LiveLink{5, 0, "vm-b", 0, LinkMode::Copy, false, 1, 2});

    // No inbox: "none" on the wire (the broker refuses it, naming the card).
    Register bare;
    bare.vm_name = "v";
    bare.sounds.push_back(sound(1, "w", UniqueFd{}));
    auto back = std::get<Register>(round_trip(Message(std::move(bare))));
    REQUIRE(back.sounds.size() == 1);
    CHECK_FALSE(back.sounds[0].inbox);
}

TEST_CASE("sound: a full registration's fds fit one message", "[crossover][sound][protocol]") {
    std::vector<std::unique_ptr<FakeNic>> nics;
    std::vector<UniqueFd> keep;
    Register reg;
    reg.vm_name = "big";
    for (std::uint32_t i = 0; i < kMaxNicsPerVm; ++i) {
        nics.push_back(std::make_unique<FakeNic>("n", 4096));
        NicRegistration nic = nics.back()->registration(i, mac(std::uint8_t(i + 1)), {"p"}, false, LinkMode::Window);
        keep.push_back(create_sealed_memfd("w", 4096));
        nic.window = dup_fd(keep.back().get());
        nic.window_size = 4096;
        nic.tx_irq = UniqueFd(::eventfd(0, EFD_CLOEXEC));
        reg.nics.push_back(std::move(nic));
    }
    for (std::uint32_t i = 0; i < kMaxSoundsPerVm; ++i) {
        keep.push_back(create_sealed_memfd("in", 4096));
        reg.sounds.push_back(sound(i, "p", keep.back()));
    }
    Message m(std::move(reg));
    CHECK(encode(m).fds.size() == kMaxFdsPerMessage);
    auto r = std::get<Register>(round_trip(std::move(m)));
    CHECK(r.nics.size() == kMaxNicsPerVm);
    REQUIRE(r.sounds.size() == kMaxSoundsPerVm);
    CHECK(same_file(r.sounds[3].inbox.get(), keep.back().get()));
    CHECK(r.nics[7].tx_irq);
}

TEST_CASE("sound: SoundLinkUp hands over a working inbox, SoundLinkDown round trips", "[crossover][sound][protocol]") {
    UniqueFd inbox = create_sealed_memfd("peer-inbox", 4096);
    auto up = std::get<SoundLinkUp>(round_trip(SoundLinkUp{1, "vm-b", 3, dup_fd(inbox.get())}));
    CHECK(up.local_card == 1);
    CHECK(up.peer_vm == "vm-b");
    CHECK(up.peer_card == 3);
    REQUIRE(up.peer_inbox);
    SharedMapping theirs(up.peer_inbox.get(), 4096), ours(inbox.get(), 4096);
    std::memcpy(theirs.data() + 100, "hello", 5);
    CHECK(std::memcmp(ours.data() + 100, "hello", 5) == 0);

    auto down = std::get<SoundLinkDown>(round_trip(SoundLinkDown{2, "vm-c", "vm-c went away", false}));
    CHECK((down.local_card == 2 && down.peer_vm == "vm-c" && down.reason == "vm-c went away" && !down.refused));
    CHECK(std::get<SoundLinkDown>(round_trip(SoundLinkDown{0, "b", "formats differ", true})).refused);
    CHECK(message_name(SoundLinkUp{}) == "SoundLinkUp");
    CHECK(message_name(SoundLinkDown{}) == "SoundLinkDown");
}

TEST_CASE("sound: encode refuses fields beyond the limits", "[crossover][sound][protocol]") {
    UniqueFd inbox = create_sealed_memfd("in", 4096);
    Register many;
    many.vm_name = "v";
    for (std::uint32_t i = 0; i <= kMaxSoundsPerVm; ++i) many.sounds.push_back(sound(i, "w", inbox));
    CHECK_THROWS_AS(encode(Message(std::move(many))), ProtocolError);

    Register long_peer;
    long_peer.vm_name = "v";
    long_peer.sounds.push_back(sound(0, std::string(kMaxNameLength + 1, 'w'), inbox));
    CHECK_THROWS_AS(encode(Message(std::move(long_peer))), ProtocolError);

    CHECK_THROWS_AS(encode(SoundLinkUp{0, std::string(kMaxNameLength + 1, 'w'), 0, dup_fd(inbox.get())}), ProtocolError);
    CHECK_THROWS_AS(encode(SoundLinkDown{0, std::string(kMaxNameLength + 1, 'w'), "r", false}), ProtocolError);
    CHECK_THROWS_AS(encode(SoundLinkDown{0, "w", std::string(4097, 'r'), false}), ProtocolError);
    CHECK_NOTHROW(encode(SoundLinkDown{0, std::string(kMaxNameLength, 'w'), std::string(4096, 'r'), true}));
}

TEST_CASE("sound: the decoder checks every count, length, fd and boolean itself", "[crossover][sound][protocol]") {
    UniqueFd inbox = create_sealed_memfd("in", 4096);
    Register one;
    one.vm_name = "v";
    one.sounds.push_back(sound(0, "w", inbox));
    Message keep(std::move(one));
    EncodedMessage e = encode(keep);
    REQUIRE(e.fds.size() == 1);
    auto decoded = [&](const std::vector<std::uint8_t>& bytes, std::size_t fds) {
        std::vector<UniqueFd> attached;
        for (std::size_t i = 0; i < fds; ++i) attached.push_back(dup_fd(inbox.get()));
        return decode(bytes, std::move(attached));
    };
    CHECK_NOTHROW(decoded(e.bytes, 1));
    CHECK_THROWS_AS(decoded(with_u32(e.bytes, kSoundCountAt, kMaxSoundsPerVm + 1), 1), ProtocolError);  // too many
    CHECK_THROWS_AS(decoded(with_u32(e.bytes, kSoundCountAt, 0xffffffff), 1), ProtocolError);
    CHECK_THROWS_AS(decoded(with_u32(e.bytes, kSoundCountAt, 2), 1), ProtocolError);  // truncated
    CHECK_THROWS_AS(decoded(with_u32(e.bytes, kFirstCardAt + 4, kMaxNameLength + 1), 1), ProtocolError);  // peer too long
    CHECK_THROWS_AS(decoded(with_u32(e.bytes, kFirstCardAt + 4, 100), 1), ProtocolError);  // peer past the packet
    const std::size_t fd_at = kFirstCardAt + 4 + (4 + 1) + 4 + 4;
    CHECK_THROWS_AS(decoded(e.bytes, 0), ProtocolError);  // the inbox is missing (header says 1 fd)
    auto no_fd = with_u32(e.bytes, 12, 0);                // header: no fd attached ...
    CHECK_THROWS_AS(decoded(no_fd, 0), ProtocolError);    // ... but the card refers to fd 0
    CHECK_THROWS_AS(decoded(with_u32(e.bytes, fd_at, 1), 1), ProtocolError);  // fd index out of range
    CHECK_NOTHROW(decoded(with_u32(with_u32(e.bytes, fd_at, 0xffffffff), 12, 0), 0));  // -1: none

    // Two cards naming one fd.
    Register two;
    two.vm_name = "v";
    two.sounds.push_back(sound(0, "w", inbox));
    two.sounds.push_back(sound(1, "w", inbox));
    Message keep2(std::move(two));
    EncodedMessage e2 = encode(keep2);
    const std::size_t second_fd_at = fd_at + 4 + 4 + (4 + 1) + 4 + 4;
    CHECK_THROWS_AS(decoded(with_u32(e2.bytes, second_fd_at, 0), 2), ProtocolError);
    CHECK_NOTHROW(decoded(e2.bytes, 2));

    // SoundLinkDown: a boolean of 2; SoundLinkUp: truncated.
    EncodedMessage down = encode(SoundLinkDown{0, "w", "r", true});
    auto bad_bool = down.bytes;
    bad_bool.back() = 2;
    CHECK_THROWS_AS(decode(bad_bool, {}), ProtocolError);
    CHECK_NOTHROW(decode(down.bytes, {}));
    EncodedMessage up = encode(SoundLinkUp{0, "w", 1, UniqueFd{}});
    auto cut = up.bytes;
    cut.pop_back();
    cut[8] -= 1;  // the header's payload length follows the cut
    CHECK_THROWS_AS(decode(cut, {}), ProtocolError);
    CHECK_NOTHROW(decode(up.bytes, {}));
}
