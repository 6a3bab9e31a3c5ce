// The broker protocol: messages between `xover run` (a VM) and `xover
// broker` over a SOCK_SEQPACKET Unix socket. One message = one packet:
//
//   header  magic "XOVR" (u32), version (u16), type (u16),
//           payload length (u32), number of fds attached (u32)
//   payload fields in native byte order (both ends are on one host);
//           strings are u32 length + bytes; an fd field is an i32 index
//           into the SCM_RIGHTS array attached to the packet (-1 = none).
//
// Every length is checked against the packet and against fixed limits;
// anything malformed is a ProtocolError (the broker then closes that
// client with a log line), never a crash. Fds that a message does not
// claim are closed.
//
// Conversation:
//   VM → broker   Register            → RegisterOk | RegisterError (then the VM exits)
//                 (again after the broker restarted: with the VM's live links,
//                 which the new broker adopts, link_adoption.hpp; a refusal
//                 then only means "try again later")
//   broker → VM   LinkUp / LinkDown   any time after RegisterOk
//   VM → broker   FrameSeen           a frame to a MAC it has no link for (auto wiring)
//   VM → broker   SetPeers            one of its NICs' static peers changed (link and
//                                     unlink at run time); answered, if at all, by
//                                     LinkUp / LinkDown
//   broker → VM   SoundLinkUp / SoundLinkDown
//                                     any time after RegisterOk (its sound cards,
//                                     sound_planner.hpp); a re-registration gets
//                                     SoundLinkUp again for links that still hold
//   any → broker  StatusRequest       → StatusReply (`xover status`)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/net/mac_address.hpp"

namespace xover::crossover {

inline constexpr std::uint32_t kProtocolMagic = 0x52564f58;  // "XOVR" little-endian
// 2: tx_irq; 3: consent group, no pid; 4: live links; 5: SetPeers; 6: sound cards;
// 7: ring areas; 8: no RAM on window links (a v7 VM would refuse them)
inline constexpr std::uint16_t kProtocolVersion = 8;
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::size_t kMaxPayloadSize = 60 * 1024;
inline constexpr std::size_t kMaxNicsPerVm = 8;     // 7 fds each
inline constexpr std::size_t kMaxSoundsPerVm = 4;   // 1 fd each
// A Register of kMaxNicsPerVm NICs and kMaxSoundsPerVm sound cards, every
// fd present, fits (Linux takes up to 253 fds a message).
inline constexpr std::size_t kMaxFdsPerMessage = kMaxNicsPerVm * 7 + kMaxSoundsPerVm;
inline constexpr std::size_t kMaxNameLength = 128;
inline constexpr std::size_t kMaxPeersPerNic = 64;
inline constexpr std::size_t kMaxLiveLinksPerVm = kMaxNicsPerVm * 8;  // nic::kMaxProducerSlots links per NIC
// The largest ring area (crossover/ring_area.hpp) a peer maps.
inline constexpr std::uint64_t kMaxRingAreaSize = std::uint64_t{1} << 20;
// Link ids the broker hands out, and a re-registering VM may report, stay
// below this: no counter wraps, whatever a client reports.
inline constexpr std::uint64_t kMaxLinkId = std::uint64_t{1} << 62;

class ProtocolError : public Error {
public:
    using Error::Error;
};

enum class LinkMode : std::uint8_t { Copy = 0, Window = 1 };
std::string_view to_string(LinkMode mode);

// One NIC of a registering VM. The fds are the VM's own; the broker keeps
// them and forwards duplicates to the peers it links this NIC with.
struct NicRegistration {
    std::uint32_t index = 0;              // the NIC's index in the VM
    net::MacAddress mac;
    std::string model;                    // "e1000" | "virtio-net"
    std::vector<std::string> peers;       // static peers (VM names)
    bool auto_peer = false;               // crossover = "auto"
    LinkMode mode = LinkMode::Copy;
    std::uint64_t ram_size = 0;           // bytes of guest RAM in `ram`
    std::uint64_t window_size = 0;        // bytes of DMA window in `window` (0 = none)
    std::uint64_t rings_size = 0;         // bytes of ring area in `rings` (0 = none)
    kvm::UniqueFd ram;                    // guest RAM memfd (sealed against shrinking)
    kvm::UniqueFd state;                  // shared NIC state page memfd (nic::kSharedStateSize)
    kvm::UniqueFd window;                 // DMA window memfd (window mode), optional
    kvm::UniqueFd rings;                  // ring area memfd (window mode, crossover/ring_area.hpp), optional
    kvm::UniqueFd irq;                    // eventfd: writing it interrupts this NIC's guest
    kvm::UniqueFd doorbell;               // eventfd: wakes this NIC's owner process (RX space returned)
    kvm::UniqueFd tx_irq;                 // eventfd: raises this NIC's TX-queue interrupt (virtio-net), optional
};

// A link a VM still has when it registers again with a restarted broker:
// what the new broker needs to adopt it (link_adoption.hpp). Both ends
// report it; the broker believes it only when the two reports mirror each
// other.
struct LiveLink {
    std::uint64_t link_id = 0;
    std::uint32_t local_nic = 0;
    std::string peer_vm;
    std::uint32_t peer_nic = 0;
    LinkMode mode = LinkMode::Copy;
    bool automatic = false;
    std::uint32_t producer_slot = 0;       // the slot this VM uses in the peer's state page
    std::uint32_t peer_producer_slot = 0;  // the slot the peer uses in this VM's state page
    bool operator==(const LiveLink&) const = default;
};

// One sound card of a registering VM whose streams are wired to a peer
// (sound_planner.hpp has the rules). The broker keeps the inbox and hands
// a duplicate to the peer card it links this card with.
struct SoundRegistration {
    std::uint32_t index = 0;      // the card's index in the VM (its --sound)
    std::string peer;             // the one VM its output and input are wired to
    std::uint32_t rate = 0;       // the link's format: frames a second (S16_LE)
    std::uint32_t channels = 0;   //   and channels
    kvm::UniqueFd inbox;          // memfd (sealed against shrinking): the cable this card captures from; the
                                  // broker hands a duplicate to the peer, whose output writes into it
};

// Who the client is (pid, uid) the broker learns from the socket
// (SO_PEERCRED), never from a message.
struct Register {
    std::string vm_name;
    // VMs started from one `xover up` file share a random group (the file
    // is the operator's consent to link them, link_planner.hpp); "" for none.
    std::string consent_group;
    std::vector<NicRegistration> nics;
    // At most kMaxSoundsPerVm; their fds count toward kMaxFdsPerMessage.
    std::vector<SoundRegistration> sounds{};
    // Registering again (the broker it knew went away): how many times it
    // registered before, and the links it still has. 0 and none at first.
    std::uint32_t earlier_registrations = 0;
    std::vector<LiveLink> links{};
};

struct RegisterOk {};

struct RegisterError {
    std::string reason;  // one line, printed by the VM before it exits non-zero
};

// A link between one of the receiver's NICs and a peer's NIC. The fds are
// the peer NIC's; the receiver maps the peer's RAM (copy mode only: a
// window link carries none) or window (window mode), its ring area (a
// window NIC's, on any link) and state page, writes the peer's irqfd to
// interrupt it and the peer's doorbell to wake the peer's process.
struct LinkUp {
    std::uint64_t link_id = 0;
    std::uint32_t local_nic = 0;
    std::string peer_vm;
    std::uint32_t peer_nic = 0;
    net::MacAddress peer_mac;
    std::string peer_model;
    LinkMode mode = LinkMode::Copy;
    bool automatic = false;               // made by the cross-talk detector
    std::uint32_t producer_slot = 0;      // counter slot to use in the peer's state page
    std::uint32_t peer_producer_slot = 0; // the slot the peer uses in ours (reported back in LiveLink)
    std::uint64_t peer_ram_size = 0;
    std::uint64_t peer_window_size = 0;
    std::uint64_t peer_rings_size = 0;
    kvm::UniqueFd peer_ram;     // copy links only
    kvm::UniqueFd peer_state;
    kvm::UniqueFd peer_window;
    kvm::UniqueFd peer_rings;   // the peer NIC's ring area, if it has one (window mode), optional
    kvm::UniqueFd peer_irq;
    kvm::UniqueFd peer_doorbell;
    kvm::UniqueFd peer_tx_irq;  // optional: the peer NIC's TX-queue interrupt (virtio-net)
};

struct LinkDown {
    std::uint64_t link_id = 0;
    std::uint32_t local_nic = 0;
    std::string reason;
};

// Sent by a VM whose NIC transmitted a unicast frame to a MAC it has no
// link for (once per MAC, rate-limited by the VM). The broker's cross-talk
// detector decides whether that MAC is a registered NIC it may link to.
struct FrameSeen {
    std::uint32_t nic = 0;
    net::MacAddress dst;
};

// Sent by a registered VM: NIC `nic`'s static peer list (NicRegistration::
// peers) is now `peers` and its auto setting `auto_peer` (link and unlink
// at run time, and a carrier taken down, through the VM's control API). The broker applies the link rules to
// the new list as to a registration's: links it no longer allows go down
// (LinkDown to both ends), static links it now allows come up (LinkUp).
// Nothing answers a refusal (a NIC the VM did not register, a name that is
// not a VM name); the broker logs it and changes nothing.
struct SetPeers {
    std::uint32_t nic = 0;
    std::vector<std::string> peers;  // at most kMaxPeersPerNic names of at most kMaxNameLength bytes
    bool auto_peer = false;          // crossover = "auto"
};

struct StatusRequest {
    bool json = false;
};

struct StatusReply {
    std::string text;
};

// Sound card `local_card` of the receiver is wired to card `peer_card` of
// VM `peer_vm`: its output writes into `peer_inbox` (the peer card's
// cable), and the peer's output into this card's own inbox. Sent to both
// ends when the second of them registers; sent again, with the same
// inbox, when both register again with a restarted broker.
struct SoundLinkUp {
    std::uint32_t local_card = 0;
    std::string peer_vm;
    std::uint32_t peer_card = 0;
    kvm::UniqueFd peer_inbox;     // the peer card's cable: this card's output writes into it
};

// Sound card `local_card`'s link with `peer_vm` is gone, or was never made.
struct SoundLinkDown {
    std::uint32_t local_card = 0;
    std::string peer_vm;
    std::string reason;           // one line: "b went away", "a.snd0 (48000 Hz, 2 channels) and b.snd0 ... differ ..."
    bool refused = false;         // true: the link was never made (format mismatch); false: a link that was up went down
};

using Message = std::variant<Register, RegisterOk, RegisterError, LinkUp, LinkDown, FrameSeen, StatusRequest,
                             StatusReply, SetPeers, SoundLinkUp, SoundLinkDown>;

std::string_view message_name(const Message& message);

// A message as bytes plus the fds to attach (borrowed from the message).
struct EncodedMessage {
    std::vector<std::uint8_t> bytes;
    std::vector<int> fds;
};

// Throws ProtocolError if a field exceeds the protocol's limits.
EncodedMessage encode(const Message& message);
// Decodes one packet; takes ownership of `fds`. Throws ProtocolError.
Message decode(std::span<const std::uint8_t> packet, std::vector<kvm::UniqueFd> fds);

// Sends one message on a SOCK_SEQPACKET socket without blocking and
// without SIGPIPE. Returns false when the peer is gone or its queue is full
// (the caller treats that client as dead); throws ProtocolError when the
// message cannot be encoded.
bool send_message(int socket, const Message& message);

struct Received {
    enum class Status { Message, WouldBlock, Closed } status = Status::Closed;
    std::optional<Message> message;
};

// Receives one message (non-blocking if the socket is, or with
// MSG_DONTWAIT when `dont_wait`). Throws ProtocolError on a malformed
// packet (truncated, too many fds, bad header, bad fields).
Received receive_message(int socket, bool dont_wait = true);

// Creates a connected SOCK_SEQPACKET pair (tests, in-process brokers).
std::pair<kvm::UniqueFd, kvm::UniqueFd> seqpacket_pair();

}  // namespace xover::crossover
