// The vhost-user protocol's messages (the QEMU project's "Vhost-user
// Protocol" document; xover implements the back-end side for virtio-net):
// a front-end (QEMU) connects to a Unix stream socket and sends requests
//
//   header   request (u32), flags (u32: version 1 in bits 0-1, bit 2 =
//            reply, bit 3 = need reply), size (u32) of the payload
//   payload  `size` bytes, native byte order; some requests carry fds
//            as SCM_RIGHTS ancillary data on the header's first byte
//
// and reads replies with the same header (reply bit set). Every request is
// hostile input: read_message() checks the header, the payload size
// against the request's own size and a fixed cap, and the number of fds
// the request may carry; decoders check every count. Anything malformed
// is a vhost_user::ProtocolError naming the request and what was wrong;
// the session then closes the connection, never the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"

namespace xover::vhost_user {

class ProtocolError : public Error {
public:
    using Error::Error;
};

// Front-end → back-end requests this back-end knows by name. Any other
// value is still read (and refused by the session).
enum class Request : std::uint32_t {
    GetFeatures = 1,
    SetFeatures = 2,
    SetOwner = 3,
    ResetOwner = 4,
    SetMemTable = 5,
    SetLogBase = 6,
    SetLogFd = 7,
    SetVringNum = 8,
    SetVringAddr = 9,
    SetVringBase = 10,
    GetVringBase = 11,
    SetVringKick = 12,
    SetVringCall = 13,
    SetVringErr = 14,
    GetProtocolFeatures = 15,
    SetProtocolFeatures = 16,
    GetQueueNum = 17,
    SetVringEnable = 18,
    SendRarp = 19,
    NetSetMtu = 20,
    SetBackendReqFd = 21,
    IotlbMsg = 22,
    SetVringEndian = 23,
    GetConfig = 24,
    SetConfig = 25,
    GetMaxMemSlots = 36,
    AddMemReg = 37,
    RemMemReg = 38,
};
// "SET_MEM_TABLE" etc.; "request 99" for one it does not know.
std::string fmt_request(std::uint32_t request);

inline constexpr std::uint32_t kVersion = 0x1;
inline constexpr std::uint32_t kFlagVersionMask = 0x3;
inline constexpr std::uint32_t kFlagReply = 1u << 2;
inline constexpr std::uint32_t kFlagNeedReply = 1u << 3;
inline constexpr std::size_t kHeaderSize = 12;
// Largest payload accepted: the largest request this back-end takes is
// SET_MEM_TABLE with kMaxMemoryRegions regions.
inline constexpr std::size_t kMaxPayloadSize = 4096;
inline constexpr std::size_t kMaxMemoryRegions = 8;
inline constexpr std::size_t kMaxFdsPerMessage = kMaxMemoryRegions;

// Feature bits of the protocol itself (GET_FEATURES bit 30 says the
// back-end speaks GET/SET_PROTOCOL_FEATURES).
inline constexpr unsigned kFeatureProtocolFeatures = 30;
inline constexpr unsigned kProtocolFeatureMq = 0;
inline constexpr unsigned kProtocolFeatureReplyAck = 3;
inline constexpr unsigned kProtocolFeatureConfig = 9;

// SET_VRING_KICK / SET_VRING_CALL / SET_VRING_ERR payload (u64): the ring
// index in bits 0-7; bit 8 set means no fd comes (polling / no interrupts).
inline constexpr std::uint64_t kVringIndexMask = 0xff;
inline constexpr std::uint64_t kVringNoFd = 1u << 8;

struct Message {
    std::uint32_t request = 0;
    std::uint32_t flags = 0;
    std::vector<std::uint8_t> payload;  // exactly header.size bytes
    std::vector<kvm::UniqueFd> fds;     // in the order they came

    bool need_reply() const { return flags & kFlagNeedReply; }
};

// Reads one message from a connected SOCK_STREAM socket (blocking; the
// session calls it when the socket is readable, and a front-end sends a
// whole message at once). Returns nullopt when the peer closed the
// connection cleanly before a header. Throws ProtocolError for a bad
// version, a reply flag on a request, a payload larger than
// kMaxPayloadSize, more than kMaxFdsPerMessage fds, truncated ancillary
// data (MSG_CTRUNC) or a connection closed mid-message; xover::Error for
// a failing recvmsg. Fds received with a message that is then refused are
// closed (they live in the Message or are closed before the throw).
std::optional<Message> read_message(int socket);

// Sends a reply to `request` (flags: version | reply bit) with `payload`.
// Throws xover::Error if the socket fails (MSG_NOSIGNAL: no SIGPIPE).
void send_reply(int socket, std::uint32_t request, std::span<const std::uint8_t> payload);
void send_reply_u64(int socket, std::uint32_t request, std::uint64_t value);

// --- payload decoders: each throws ProtocolError (naming the request)
// unless the payload has exactly its layout and every count is in range.

std::uint64_t decode_u64(const Message& m);

// struct vhost_vring_state
struct VringState {
    std::uint32_t index = 0;
    std::uint32_t num = 0;
};
VringState decode_vring_state(const Message& m);

// struct vhost_vring_addr: the three ring parts as the front-end's own
// virtual addresses (translated through the memory table's
// userspace_addr), unless the flags say otherwise.
struct VringAddress {
    std::uint32_t index = 0;
    std::uint32_t flags = 0;  // bit 0: log; not supported, ignored
    std::uint64_t desc_user_addr = 0;
    std::uint64_t used_user_addr = 0;
    std::uint64_t avail_user_addr = 0;
    std::uint64_t log_guest_addr = 0;
};
VringAddress decode_vring_address(const Message& m);

// One region of SET_MEM_TABLE.
struct MemoryRegion {
    std::uint64_t guest_phys_addr = 0;
    std::uint64_t memory_size = 0;
    std::uint64_t userspace_addr = 0;
    std::uint64_t mmap_offset = 0;
};
// SET_MEM_TABLE: u32 count, u32 padding, then `count` regions; exactly one
// fd per region (m.fds[i] belongs to region i). Checks 1 <= count <=
// kMaxMemoryRegions, the fd count, and that no region is empty or wraps
// (guest_phys_addr + memory_size, userspace_addr + memory_size and
// mmap_offset + memory_size do not overflow). Overlaps are the memory
// table's to check.
std::vector<MemoryRegion> decode_memory_table(const Message& m);

// SET_VRING_KICK / CALL / ERR: the ring index and the fd (invalid
// UniqueFd with kVringNoFd). Takes the fd out of `m`. Throws if bit 8 and
// the fd count disagree (an fd must come unless bit 8 is set; none may
// come with it) or other bits above 8 are set.
struct VringFd {
    std::uint32_t index = 0;
    kvm::UniqueFd fd;
};
VringFd decode_vring_fd(Message& m);

// GET_CONFIG / SET_CONFIG: u32 offset, u32 size, u32 flags, then `size`
// bytes of the device's configuration space. Checks size <=
// kMaxConfigSize and that the payload holds exactly those bytes.
inline constexpr std::size_t kMaxConfigSize = 256;
struct ConfigAccess {
    std::uint32_t offset = 0;
    std::uint32_t size = 0;
    std::uint32_t flags = 0;
};
ConfigAccess decode_config_access(const Message& m);
// A GET_CONFIG reply: the request's header with `bytes` (size of them).
std::vector<std::uint8_t> encode_config(const ConfigAccess& access, std::span<const std::uint8_t> bytes);

// Builders for the front-end side (the tests' hostile front-end, and the
// round-trip unit tests): the exact bytes a front-end sends, header
// included, and a send that attaches fds.
std::vector<std::uint8_t> encode_request(std::uint32_t request, std::uint32_t flags,
                                          std::span<const std::uint8_t> payload);
void send_request(int socket, std::uint32_t request, std::span<const std::uint8_t> payload,
                  std::span<const int> fds = {}, std::uint32_t extra_flags = 0);
std::vector<std::uint8_t> encode_vring_state(VringState s);
std::vector<std::uint8_t> encode_vring_address(const VringAddress& a);
std::vector<std::uint8_t> encode_memory_table(std::span<const MemoryRegion> regions);
std::vector<std::uint8_t> encode_u64(std::uint64_t v);

// Reads one reply (the front-end side): throws ProtocolError unless it is
// a reply to `request`. Returns its payload.
std::vector<std::uint8_t> read_reply(int socket, std::uint32_t request);

}  // namespace xover::vhost_user
