// A sending e1000 with a CrossoverPort, links from it to receivers in
// fake memory, and an e1000 receiver: the two ends of the crossover
// data-path tests.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "e1000_ring_builder.hpp"
#include "xover/crossover/client.hpp"
#include "xover/crossover/crossover_port.hpp"
#include "xover/crossover/shared_memory.hpp"

namespace xover::test {

// A link to a peer whose RAM is `memory` and whose state page is `page`.
inline std::shared_ptr<crossover::PeerLink> make_link(std::uint64_t id, const net::MacAddress& mac,
                                                      std::string model, FakeGuestMemory& memory,
                                                      const crossover::SharedStatePage& page, int irq_eventfd) {
    auto link = std::make_shared<crossover::PeerLink>();
    link->id = id;
    link->peer_vm = "peer";
    link->peer_mac = mac;
    link->peer_model = std::move(model);
    link->state_page = crossover::SharedMapping(page.fd(), nic::kSharedStateSize);
    link->peer_memory = crossover::PeerGuestMemory(memory.bytes.data(), memory.bytes.size());
    link->peer_irq = kvm::UniqueFd(::dup(irq_eventfd));
    return link;
}

inline std::uint64_t drain(int fd) {
    std::uint64_t v = 0;
    return ::read(fd, &v, sizeof v) == sizeof v ? v : 0;
}

struct Sender {
    E1000Rig rig;
    crossover::CrossoverPort port{"sender", nic::ModelId::E1000, rig.backend, true};
    TxRing tx{rig};
    Sender() {
        port.set_own_memory(rig.memory);
        rig.nic.attach_crossover(port);
    }
    void add(std::shared_ptr<crossover::PeerLink> link) {
        rig.nic.run_locked([&] { REQUIRE(port.add_link(std::move(link))); });
    }
    std::uint64_t counter(const std::string& name) { return rig.counter(name); }
};

// An e1000 at the other end of those links, with its own port (its RX
// state lives in the port's shared page), at `mac`.
struct E1000Receiver : E1000Rig {
    crossover::CrossoverPort port{"receiver", nic::ModelId::E1000, backend, true};
    explicit E1000Receiver(const net::MacAddress& mac) : E1000Rig(4 << 20, mac) {
        port.set_own_memory(memory);
        nic.attach_crossover(port);
    }
};

}  // namespace xover::test
