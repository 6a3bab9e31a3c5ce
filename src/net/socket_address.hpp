// Resolving "host:port" into a sockaddr, once, at setup time.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "xover/net/backend_spec.hpp"

namespace xover::net {

struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;

    int family() const { return storage.ss_family; }
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
    std::string to_string() const;
};

// Resolves with getaddrinfo (first result); throws xover::Error naming `what`.
SocketAddress resolve(const HostPort& address, int socket_type, const std::string& what);
// The wildcard address of `family` (0.0.0.0 or ::) with `port`.
SocketAddress any_address(int family, std::uint16_t port);

}  // namespace xover::net
