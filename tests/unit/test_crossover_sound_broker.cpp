// Sound links end to end, in-process: a broker thread on a temporary
// socket, VMs played by BrokerClients (and a VmAgent) registering sound
// cards with real memfds as their inboxes.
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "broker_harness.hpp"
#include "temp_dir.hpp"
#include "test_crossover_util.hpp"
#include "test_net_support.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/crossover/client.hpp"
#include "xover/crossover/vm_agent.hpp"

using namespace xover::crossover;
using namespace xover::crossover::test;
using xover::kvm::UniqueFd;
using xover::test::wait_until;

namespace {

constexpr std::uint64_t kInboxBytes = 4096 + 64 * 1024;  // a cable's size (sound/cable.hpp)

struct TempDir : xover::test::TempDir {
    TempDir() : xover::test::TempDir("xover-sound-broker-test") {}
};

struct SoundRecorder : LinkHandler {
    std::vector<SoundLinkUp> up;
    std::vector<SoundLinkDown> down;
    std::vector<std::shared_ptr<PeerLink>> nic_links;
    bool lost = false;
    void link_up(std::shared_ptr<PeerLink> link) override { nic_links.push_back(std::move(link)); }
    void link_down(std::uint64_t, std::uint32_t) override {}
    void broker_lost() override { lost = true; }
    void sound_link_up(SoundLinkUp link) override { up.push_back(std::move(link)); }
    void sound_link_down(const SoundLinkDown& d) override { down.push_back(d); }
};

// A fake VM with one sound card (and, if asked, one crossover NIC).
struct FakeSoundVm {
    std::string name;
    UniqueFd inbox = create_sealed_memfd("inbox", kInboxBytes);
    std::optional<FakeNic> nic;
    BrokerClient client;
    SoundRecorder links;

    FakeSoundVm(const std::filesystem::path& sock, std::string vm_name, std::string peer, std::uint32_t rate = 48000,
            std::uint32_t channels = 2, std::optional<std::uint8_t> nic_mac = std::nullopt,
            std::uint32_t earlier_registrations = 0)
        : name(std::move(vm_name)), client(connect_broker(sock)) {
        Register reg{name, "", {}};
        reg.sounds.push_back(SoundRegistration{0, peer, rate, channels, dup_fd(inbox.get())});
        if (nic_mac) {
            nic.emplace(name);
            reg.nics.push_back(nic->registration(0, mac(*nic_mac), {peer}));
        }
        reg.earlier_registrations = earlier_registrations;
        client.register_vm(std::move(reg), links);
    }

    bool pump_until(const std::function<bool()>& done) { return test::pump_until(client, links, done); }
    void pump_briefly(int ms = 100) { test::pump_briefly(client, links, ms); }
};

bool status_has(const std::filesystem::path& sock, const std::string& text, bool json = true) {
    return request_status(sock, json).find(text) != std::string::npos;
}

// Registers a VM with one sound card and expects the broker's refusal.
std::string refusal(const std::filesystem::path& sock, SoundRegistration card, std::string vm = "vm-x") {
    BrokerClient c(connect_broker(sock));
    Register reg{std::move(vm), "", {}};
    reg.sounds.push_back(std::move(card));
    SoundRecorder links;
    try {
        c.register_vm(std::move(reg), links);
    } catch (const xover::Error& e) {
        return e.what();
    }
    return "accepted";
}

}  // namespace

TEST_CASE("sound broker: two cards naming each other get each other's inbox, a departure is told",
          "[crossover][sound][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread broker({sock});

    FakeSoundVm a(sock, "vm-a", "vm-b", 48000, 2, 1);
    CHECK(a.links.up.empty());
    CHECK(status_has(sock, "waiting for vm-b", false));
    auto b = std::make_unique<FakeSoundVm>(sock, "vm-b", "vm-a", 48000, 2, 2);
    // b's links came before its RegisterOk; a's arrive on its socket.
    REQUIRE(b->links.up.size() == 1);
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));
    CHECK(a.links.nic_links.size() == 1);  // the NICs linked too, in the same registration
    CHECK(b->links.nic_links.size() == 1);

    const SoundLinkUp& at_a = a.links.up[0];
    const SoundLinkUp& at_b = b->links.up[0];
    CHECK(at_a.local_card == 0);
    CHECK(at_a.peer_vm == "vm-b");
    CHECK(at_a.peer_card == 0);
    CHECK(at_b.peer_vm == "vm-a");
    CHECK(same_file(at_a.peer_inbox.get(), b->inbox.get()));
    CHECK(same_file(at_b.peer_inbox.get(), a.inbox.get()));

    // a's output writes into b's inbox: b reads it in its own mapping; and back.
    SharedMapping a_out(at_a.peer_inbox.get(), kInboxBytes), b_in(b->inbox.get(), kInboxBytes);
    std::memcpy(a_out.data() + 4096, "a plays", 7);
    CHECK(std::memcmp(b_in.data() + 4096, "a plays", 7) == 0);
    SharedMapping b_out(at_b.peer_inbox.get(), kInboxBytes), a_in(a.inbox.get(), kInboxBytes);
    std::memcpy(b_out.data() + 8192, "b plays", 7);
    CHECK(std::memcmp(a_in.data() + 8192, "b plays", 7) == 0);

    const std::string table = request_status(sock, false);
    CHECK_THAT(table, Catch::Contains("Sound cards: 2"));
    CHECK_THAT(table, Catch::Contains("linked to vm-b.snd0"));
    CHECK_THAT(table, Catch::Contains("48000 Hz, 2 channels"));
    CHECK_THAT(table, Catch::Contains("sound links 1 formed, 0 refused"));
    const std::string json = request_status(sock, true);
    CHECK_THAT(json, Catch::Contains("\"sounds\":[{\"index\":0,\"peer\":\"vm-b\",\"rate\":48000,\"channels\":2,"
                                     "\"state\":\"linked\",\"detail\":\"linked to vm-b.snd0\","
                                     "\"linked_to\":{\"vm\":\"vm-b\",\"card\":0}}]"));
    CHECK_THAT(json, Catch::Contains("\"sound_links_formed\":1"));

    // b dies: a is told, and waits; the mapping it has stays valid.
    b.reset();
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    CHECK(a.links.down[0].local_card == 0);
    CHECK(a.links.down[0].peer_vm == "vm-b");
    CHECK(a.links.down[0].reason == "vm-b went away");
    CHECK_FALSE(a.links.down[0].refused);
    std::memcpy(a_out.data() + 4096, "still mapped", 12);
    CHECK(status_has(sock, "\"detail\":\"waiting for vm-b\""));

    // b comes back (a new process, a new inbox): linked again, to the new inbox.
    FakeSoundVm b2(sock, "vm-b", "vm-a");
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 2; }));
    CHECK(same_file(a.links.up[1].peer_inbox.get(), b2.inbox.get()));
}

TEST_CASE("sound broker: cards of different formats are refused, both told once", "[crossover][sound][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread broker({sock});
    FakeSoundVm a(sock, "vm-a", "vm-b", 48000, 2);
    FakeSoundVm b(sock, "vm-b", "vm-a", 44100, 1);
    const std::string reason =
        "vm-a.snd0 (48000 Hz, 2 channels) and vm-b.snd0 (44100 Hz, 1 channel) differ: the link is refused";
    REQUIRE(b.links.down.size() == 1);
    CHECK(b.links.down[0].refused);
    CHECK(b.links.down[0].reason == reason);
    CHECK(b.links.down[0].peer_vm == "vm-a");
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    CHECK(a.links.down[0].refused);
    CHECK(a.links.down[0].reason == reason);
    CHECK(a.links.up.empty());
    CHECK(b.links.up.empty());
    CHECK(status_has(sock, "refused: " + reason, false));
    CHECK(status_has(sock, "\"state\":\"refused\""));
    CHECK(status_has(sock, "\"sound_links_refused\":1"));

    // Others coming and going do not repeat it.
    { FakeSoundVm c(sock, "vm-c", "vm-d"); }
    a.pump_briefly(200);
    CHECK(a.links.down.size() == 1);
}

TEST_CASE("sound broker: a bad card is refused naming it, and leaves no trace", "[crossover][sound][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerThread broker({sock});
    UniqueFd inbox = create_sealed_memfd("inbox", kInboxBytes);
    auto card = [&](std::string peer, std::uint32_t rate, std::uint32_t channels) {
        return SoundRegistration{0, std::move(peer), rate, channels, dup_fd(inbox.get())};
    };
    CHECK_THAT(refusal(sock, card("vm-b", 22050, 2)),
               Catch::Contains("refused by the crossover broker: sound card 0: 22050 Hz is not a rate"));
    CHECK_THAT(refusal(sock, card("vm-b", 48000, 6)), Catch::Contains("sound card 0: 6 channels"));
    CHECK_THAT(refusal(sock, card("vm-x", 48000, 2)), Catch::Contains("sound card 0: its peer is its own VM 'vm-x'"));
    CHECK_THAT(refusal(sock, card("no such name!", 48000, 2)), Catch::Contains("sound card 0: its peer is not a valid VM name"));
    CHECK_THAT(refusal(sock, SoundRegistration{2, "vm-b", 48000, 2, UniqueFd{}}),
               Catch::Contains("sound card 2: no inbox memfd"));
    UniqueFd plain(::memfd_create("plain", MFD_CLOEXEC));
    REQUIRE(::ftruncate(plain.get(), kInboxBytes) == 0);
    CHECK_THAT(refusal(sock, SoundRegistration{0, "vm-b", 48000, 2, std::move(plain)}),
               Catch::Contains("sound card 0: inbox memfd is not sealed against shrinking"));
    CHECK_THAT(refusal(sock, SoundRegistration{0, "vm-b", 48000, 2, xover::crossover::test::eventfd_for_test()}),
               Catch::Contains("sound card 0: inbox memfd"));
    CHECK(status_has(sock, "VMs: 0", false));
    CHECK_FALSE(status_has(sock, "Sound cards", false));
}

TEST_CASE("sound broker: after a broker restart the cards are linked again, a peer that never returns is told",
          "[crossover][sound][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    BrokerOptions options{sock};
    options.adoption_grace = std::chrono::milliseconds(300);
    auto first = std::make_unique<BrokerThread>(options);
    FakeSoundVm a(sock, "vm-a", "vm-b");
    auto b = std::make_unique<FakeSoundVm>(sock, "vm-b", "vm-a");
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 1; }));

    first.reset();
    REQUIRE(a.pump_until([&] { return a.links.lost; }));
    auto second = std::make_unique<BrokerThread>(options);
    // Both register again (as the agent does, with the same inboxes).
    a.client = BrokerClient(connect_broker(sock));
    a.links.lost = false;
    Register again{"vm-a", "", {}};
    again.sounds.push_back(SoundRegistration{0, "vm-b", 48000, 2, dup_fd(a.inbox.get())});
    again.earlier_registrations = 1;
    a.client.register_vm(std::move(again), a.links);
    FakeSoundVm b_again(sock, "vm-b", "vm-a", 48000, 2, std::nullopt, 1);
    REQUIRE(a.pump_until([&] { return a.links.up.size() == 2; }));
    CHECK(same_file(a.links.up[1].peer_inbox.get(), b_again.inbox.get()));
    a.pump_briefly(500);  // past the grace: linked, so nothing more
    CHECK(a.links.down.empty());

    // The broker restarts again, and b does not come back.
    second.reset();
    REQUIRE(a.pump_until([&] { return a.links.lost; }));
    BrokerThread third(options);
    a.client = BrokerClient(connect_broker(sock));
    Register alone{"vm-a", "", {}};
    alone.sounds.push_back(SoundRegistration{0, "vm-b", 48000, 2, dup_fd(a.inbox.get())});
    alone.earlier_registrations = 2;
    a.client.register_vm(std::move(alone), a.links);
    a.pump_briefly(50);
    CHECK(a.links.down.empty());  // within the grace period
    REQUIRE(a.pump_until([&] { return a.links.down.size() == 1; }));
    CHECK_FALSE(a.links.down[0].refused);
    CHECK(a.links.down[0].peer_vm == "vm-b");
    CHECK_THAT(a.links.down[0].reason, Catch::Contains("vm-b did not register again within 300 ms"));
}

namespace {
struct RecordingCard : LinkedSound {
    std::mutex mutex;
    std::vector<SoundLinkUp> ups;
    std::vector<SoundLinkDown> downs;
    void sound_link_up(SoundLinkUp link) override {
        std::lock_guard lock(mutex);
        ups.push_back(std::move(link));
    }
    void sound_link_down(const SoundLinkDown& down) override {
        std::lock_guard lock(mutex);
        downs.push_back(down);
    }
    std::size_t up_count() {
        std::lock_guard lock(mutex);
        return ups.size();
    }
    std::size_t down_count() {
        std::lock_guard lock(mutex);
        return downs.size();
    }
};
}  // namespace

TEST_CASE("sound broker: VmAgent registers its sound cards, again after a broker restart, and hands links over",
          "[crossover][sound][broker]") {
    TempDir dir;
    auto sock = dir.path / "broker.sock";
    auto broker = std::make_unique<BrokerThread>(BrokerOptions{sock});
    UniqueFd inbox = create_sealed_memfd("agent-inbox", kInboxBytes);
    RecordingCard card;
    VmAgent agent;
    xover::test::LoopThread io;
    CHECK(agent.empty());
    agent.add_sound(SoundRegistration{0, "vm-b", 48000, 2, dup_fd(inbox.get())}, card);
    CHECK_FALSE(agent.empty());
    CHECK(agent.sound_indices() == std::vector<std::uint32_t>{0});
    agent.register_vm("vm-a", "", sock, io.loop());  // a sound card and no NIC: registers all the same

    auto b = std::make_unique<FakeSoundVm>(sock, "vm-b", "vm-a");
    REQUIRE(wait_until([&] { return card.up_count() == 1; }));
    {
        std::lock_guard lock(card.mutex);
        CHECK(card.ups[0].peer_vm == "vm-b");
        CHECK(same_file(card.ups[0].peer_inbox.get(), b->inbox.get()));
    }
    REQUIRE(b->links.up.size() == 1);
    CHECK(same_file(b->links.up[0].peer_inbox.get(), inbox.get()));  // the agent sent a duplicate of its inbox

    // The broker restarts: the agent registers again by itself; b does too.
    broker.reset();
    REQUIRE(b->pump_until([&] { return b->links.lost; }));
    broker = std::make_unique<BrokerThread>(BrokerOptions{sock});
    REQUIRE(wait_until([&] { return status_has(sock, "\"name\":\"vm-a\""); }));
    CHECK(status_has(sock, "\"registration\":2"));
    b = std::make_unique<FakeSoundVm>(sock, "vm-b", "vm-a", 48000, 2, std::nullopt, 1);
    REQUIRE(wait_until([&] { return card.up_count() == 2; }));
    {
        std::lock_guard lock(card.mutex);
        CHECK(same_file(card.ups[1].peer_inbox.get(), b->inbox.get()));
    }
    CHECK(same_file(b->links.up[0].peer_inbox.get(), inbox.get()));  // the same inbox as before

    // b leaves: the card is told.
    b.reset();
    REQUIRE(wait_until([&] { return card.down_count() == 1; }));
    {
        std::lock_guard lock(card.mutex);
        CHECK(card.downs[0].reason == "vm-b went away");
    }
    agent.remove_sound(0);  // the last card: disconnects before the loop goes
    CHECK(agent.empty());
    CHECK(wait_until([&] { return status_has(sock, "VMs: 0", false); }));
}
