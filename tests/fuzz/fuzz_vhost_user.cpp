// Fuzz target: the vhost-user back-end's message reader and payload
// decoders (vhost_user/messages.cpp), fed any byte stream a hostile
// front-end could write on its Unix stream socket. Each message must be
// read and decoded, or refused with ProtocolError; nothing else may
// happen (no crash, no other exception, no read past what was sent).
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "xover/vhost_user/messages.hpp"

using namespace xover;
using namespace xover::vhost_user;

namespace {

void decode_as_the_session_would(Message& m) {
    switch (Request(m.request)) {
    case Request::SetFeatures:
    case Request::SetProtocolFeatures: decode_u64(m); break;
    case Request::SetVringNum:
    case Request::SetVringBase:
    case Request::GetVringBase:
    case Request::SetVringEnable: decode_vring_state(m); break;
    case Request::SetVringAddr: decode_vring_address(m); break;
    case Request::SetMemTable: decode_memory_table(m); break;
    case Request::SetVringKick:
    case Request::SetVringCall:
    case Request::SetVringErr: decode_vring_fd(m); break;
    default: break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    kvm::UniqueFd front(sv[0]), back(sv[1]);
    // libFuzzer inputs are small (-max_len 4096 by default): one write fits
    // the socket buffer, and the reader sees end of stream after it.
    if (size > 0 && ::write(front.get(), data, size) != ssize_t(size)) std::abort();
    ::shutdown(front.get(), SHUT_WR);
    try {
        while (std::optional<Message> m = read_message(back.get())) decode_as_the_session_would(*m);
    } catch (const ProtocolError&) {
        // refused with a reason: what hostile input must get
    }
    return 0;
}
