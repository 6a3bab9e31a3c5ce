// The parsed form of a backend spec string (see make_backend in backend.hpp).
// Parsing checks syntax only: names are resolved and sockets opened later.
// The variant's alternative is the backend's kind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace xover::net {

// A host (IPv4 literal, IPv6 literal without brackets, or a name) and a port.
struct HostPort {
    std::string host;
    std::uint16_t port = 0;
};

struct NoneSpec {};

// "broker": the crossover broker's slow-path switch. The VM makes this
// backend itself (it needs the broker socket; see crossover::make_broker_backend).
struct BrokerSpec {};

struct TapSpec {
    std::string ifname;
};

// "udp:LPORT@RHOST:RPORT" or "udp:LHOST:LPORT@RHOST:RPORT". Without LHOST
// the socket binds the wildcard address of RHOST's family.
struct UdpSpec {
    std::optional<std::string> local_host;
    std::uint16_t local_port = 0;
    HostPort remote;
};

// "stream-listen:HOST:PORT" / "stream-connect:HOST:PORT".
struct StreamSpec {
    enum class Role { Listen, Connect } role = Role::Connect;
    HostPort address;
};

// "vhost-user:PATH[,server]": an external vhost-user back-end serves the
// NIC's queues (virtio-net only; no frames pass through xover). xover
// connects to PATH, or with ",server" listens there for the back-end.
struct VhostUserSpec {
    std::string path;
    bool server = false;
};

using BackendSpec = std::variant<NoneSpec, TapSpec, UdpSpec, StreamSpec, BrokerSpec, VhostUserSpec>;

// Throws xover::Error naming the spec and what is wrong with it.
BackendSpec parse_backend_spec(const std::string& spec);

// The spec as parse_backend_spec reads it (IPv6 hosts in brackets), for
// logs and for checking a spec built by hand: parsing the text gives the
// same spec back.
std::string to_string(const BackendSpec& spec);

}  // namespace xover::net
