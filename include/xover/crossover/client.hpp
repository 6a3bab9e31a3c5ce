// The VM side of the broker protocol: `xover run` registers its crossover
// NICs and sound cards and receives links on its I/O thread.
//
// Integration (the machine):
//   auto client = BrokerClient::connect(config.broker.value_or(default_broker_path()));
//   client.register_vm(std::move(registration));      // throws xover::Error with the broker's reason
//   loop.watch(client.fd(), Readable, [&] { if (!client.on_readable(handler)) loop.unwatch(...); });
// and `handler` forwards link_up/link_down to the NIC with that index,
// which adds/removes the PeerLink in its PeerTable under its own lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "xover/crossover/protocol.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/nic/shared_nic_state.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::crossover {

// A peer's guest memory as far as a link shares it: on a copy link its RAM
// through our mapping of its memfd (laid out as vmm::layout::ram_file_offset
// says; a window link shares none), and the ring area of a peer NIC that
// has one (window mode, crossover/ring_area.hpp, shared on any link)
// wherever the peer's state page says that decodes now. Bounds-checked
// like every GuestMemory, so a peer's descriptor pointing outside what was
// shared gives an empty span, not a crash.
class PeerGuestMemory final : public vmm::GuestMemory {
public:
    PeerGuestMemory() = default;
    PeerGuestMemory(std::uint8_t* base, std::uint64_t ram_size) : base_(base), size_(ram_size) {}
    // The ring area: `size` bytes at `base`, at the guest address `gpa`
    // holds (0: nowhere; the peer's own word, read at each translation).
    void set_ring_area(std::uint8_t* base, std::uint64_t size, const std::atomic<std::uint64_t>* gpa) {
        rings_ = base;
        rings_size_ = size;
        rings_gpa_ = gpa;
    }
    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) override;

private:
    std::uint8_t* base_ = nullptr;
    std::uint64_t size_ = 0;
    std::uint8_t* rings_ = nullptr;
    std::uint64_t rings_size_ = 0;
    const std::atomic<std::uint64_t>* rings_gpa_ = nullptr;
};

// One established link, as the sending device uses it. Owned through a
// shared_ptr: the NIC keeps it while its data path may touch the peer and
// drops it on link_down; the mappings go away with the last reference.
struct PeerLink {
    std::uint64_t id = 0;
    std::uint32_t local_nic = 0;
    std::string peer_vm;
    std::uint32_t peer_nic = 0;
    net::MacAddress peer_mac;
    std::string peer_model;
    LinkMode mode = LinkMode::Copy;
    bool automatic = false;
    std::uint32_t producer_slot = 0;  // our counters in peer_state().slots[...]
    std::uint32_t peer_producer_slot = 0;  // the peer's in our state page (reported to a restarted broker)

    SharedMapping peer_ram;     // copy links: the peer's whole guest RAM (MAP_SHARED); window links: empty
    SharedMapping state_page;   // the peer NIC's nic::SharedNicState
    SharedMapping peer_window;  // window mode: the peer's DMA window memfd (else empty)
    SharedMapping peer_rings;   // the peer NIC's ring area, if it is a window NIC (else empty)
    kvm::UniqueFd peer_window_fd;  // window mode: the same memfd, to map it into our own window
    PeerGuestMemory peer_memory;
    kvm::UniqueFd peer_irq;       // write 1: interrupt the peer's guest
    kvm::UniqueFd peer_doorbell;  // write 1: wake the peer's process
    kvm::UniqueFd peer_tx_irq;    // write 1: raise the peer's TX-queue interrupt (virtio-net; else none)

    nic::SharedNicState& peer_state() const { return *reinterpret_cast<nic::SharedNicState*>(state_page.data()); }
    nic::ProducerSlot& counters() const { return peer_state().slots[producer_slot]; }
    // One eventfd write each; no-ops if the fd is missing. Never throw.
    void interrupt_peer() const;
    void interrupt_peer_tx() const;
    void ring_peer_doorbell() const;

    // Maps the fds of a LinkUp. Throws xover::Error (bad sizes, mmap failure).
    static std::shared_ptr<PeerLink> from_message(LinkUp message);
};

class LinkHandler {
public:
    virtual ~LinkHandler() = default;
    virtual void link_up(std::shared_ptr<PeerLink> link) = 0;
    virtual void link_down(std::uint64_t link_id, std::uint32_t local_nic) = 0;
    // The broker went away. Existing links keep working (the mappings stay
    // valid); no new links come until the VM registers again. Default: nothing.
    virtual void broker_lost() {}
    // The answer to a Register sent with send_registration().
    virtual void registered() {}
    virtual void registration_refused(const std::string& /*reason*/) {}
    // A sound card's link (SoundLinkUp: peer_inbox is always present;
    // SoundLinkDown: gone, or refused). Default: ignored, the fd closes.
    virtual void sound_link_up(SoundLinkUp /*link*/) {}
    virtual void sound_link_down(const SoundLinkDown& /*down*/) {}
};

class BrokerClient {
public:
    // Connects to the broker at `path`, starting one if `start_if_missing`
    // (see ensure_broker). Throws xover::Error.
    static BrokerClient connect(const std::filesystem::path& path, bool start_if_missing = true);
    explicit BrokerClient(kvm::UniqueFd socket);

    // Sends Register (the fds are sent, then closed here with the message;
    // pass duplicates, see dup_for_broker) and waits for the answer. Throws xover::Error with the
    // broker's reason on RegisterError ("VM 'a' refused by the broker: ...").
    // The broker sends the links the registration made (static links to
    // peers already registered) before its RegisterOk; they reach `links`
    // before this returns, so a VM's guest never runs, nor a vhost-user
    // front-end's device starts, before those links exist.
    void register_vm(Register registration, LinkHandler& links,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // Sends Register without waiting (the VM's I/O thread must not block):
    // the answer comes through on_readable (registered() or
    // registration_refused()). False when the broker is gone already.
    bool send_registration(Register registration);

    // The socket to watch for readability (on the VM's I/O thread).
    int fd() const { return socket_.get(); }
    // Handles every queued message (call on one thread only: the I/O thread). Returns false once the broker has hung
    // up (after calling handler.broker_lost()); stop watching fd() then.
    bool on_readable(LinkHandler& handler);

    // Reports a unicast frame to an unlinked MAC (auto wiring). Never
    // blocks, safe from any thread; returns false if it could not be sent. The caller limits how
    // often it reports (PeerTable::should_report).
    bool report_frame_seen(std::uint32_t nic, const net::MacAddress& dst);
    // Sends NIC `nic`'s new static peers (SetPeers: link and unlink at run
    // time). Never blocks, safe from any thread; false if it could not be
    // sent. Throws ProtocolError beyond the protocol's limits
    // (kMaxPeersPerNic names of kMaxNameLength bytes).
    bool send_set_peers(std::uint32_t nic, std::vector<std::string> peers, bool auto_peer = false);

private:
    // LinkUp / LinkDown / SoundLinkUp / SoundLinkDown to `handler`; false
    // for any other message.
    static bool dispatch_link(Message& message, LinkHandler& handler);

    kvm::UniqueFd socket_;
    bool lost_ = false;
};

// Builds the shared parts of a NIC registration that every VM needs:
// duplicates of the fds (the caller keeps its own). Throws xover::Error.
kvm::UniqueFd dup_for_broker(int fd);
// The same registration with fresh duplicates of every fd: a VM keeps its
// own and sends one of these each time it registers. Throws xover::Error.
NicRegistration dup_for_broker(const NicRegistration& reg);
SoundRegistration dup_for_broker(const SoundRegistration& reg);

}  // namespace xover::crossover
