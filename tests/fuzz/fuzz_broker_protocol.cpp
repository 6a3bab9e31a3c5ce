// Fuzz target: the broker protocol's decoder (crossover/protocol.cpp), fed
// any packet with any number of attached fds, as a hostile client (or
// broker) could send on the SOCK_SEQPACKET socket. Every packet must
// either decode or throw ProtocolError; one that decodes must encode again,
// and that encoding must decode to the same bytes (the wire form is
// canonical), so what the broker forwards is what it understood.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "xover/crossover/protocol.hpp"

using namespace xover;
using namespace xover::crossover;

namespace {

// `count` fds standing for the memfds and eventfds a message carries.
std::vector<kvm::UniqueFd> attached_fds(std::size_t count) {
    static const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<kvm::UniqueFd> fds;
    for (std::size_t i = 0; i < count; ++i) fds.emplace_back(::fcntl(null_fd, F_DUPFD_CLOEXEC, 0));
    return fds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte says how many fds came with the packet (one more than
    // a message may carry, so the limit is exercised too).
    const std::size_t fd_count = data[0] % (kMaxFdsPerMessage + 2);
    const std::span<const std::uint8_t> packet(data + 1, size - 1);
    Message message;
    try {
        message = decode(packet, attached_fds(fd_count));
    } catch (const ProtocolError&) {
        return 0;  // refused with a reason: what hostile input must get
    }
    const EncodedMessage first = encode(message);
    const Message again = decode(first.bytes, attached_fds(first.fds.size()));
    if (encode(again).bytes != first.bytes) std::abort();  // not canonical: decode and encode disagree
    return 0;
}
