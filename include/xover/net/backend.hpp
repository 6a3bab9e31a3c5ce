// A NIC's "physical path": where frames go when they leave the guest and
// where frames come from. Device models talk to this interface only.
//
// Threads: send() and rx_space_available() are called by the NIC with its
// lock held (from a vCPU or device thread); deliver() and the tx-ready
// callback are called by the backend from the I/O thread, and take the
// NIC's lock. So a backend must never call deliver() or the tx-ready
// callback from inside send() or rx_space_available().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "xover/net/backend_spec.hpp"
#include "xover/net/counter_set.hpp"

namespace xover::vmm { class EventLoop; }

namespace xover::net {

// The NIC side of a backend: takes frames arriving from the wire.
class FrameReceiver {
public:
    virtual ~FrameReceiver() = default;
    // Places one frame in the guest's RX ring. Returns false when the guest
    // has no free buffer: a lossless backend keeps the frame and tries again
    // after rx_space_available(); a lossy one drops and counts it.
    virtual bool deliver(std::span<const std::uint8_t> frame) = 0;
    // The backend's link_up() changed (a stream peer connected or went
    // away). Called on the I/O thread, never from inside send().
    virtual void link_state_changed() {}
};

class Backend {
public:
    // Deferred: only a crossover port answers it (nic_port.hpp,
    // send_completable): the frame is taken, its completion comes later.
    enum class SendResult { Sent, Busy, Dropped, Deferred };

    virtual ~Backend() = default;

    // Starts receiving on `loop`, delivering to `receiver`. `tx_ready` is
    // called (on the I/O thread) when a backend that answered Busy can take
    // frames again.
    virtual void start(vmm::EventLoop& loop, FrameReceiver& receiver, std::function<void()> tx_ready) = 0;

    // Sends one complete Ethernet frame (no FCS). Busy: nothing was taken,
    // the NIC keeps the frame pending (lossless backpressure). Dropped: the
    // frame is gone and counted (peer vanished, lossy transport full).
    virtual SendResult send(std::span<const std::uint8_t> frame) = 0;

    // The guest returned RX buffers; a backend that stopped reading because
    // deliver() failed resumes (by waking its I/O thread, not inline).
    virtual void rx_space_available() = 0;

    // True when frames can reach anything (a crossover-only NIC is "link
    // down" until its peer appears).
    virtual bool link_up() const { return true; }

    // key=value counters for --stats.
    virtual Counters counters() const = 0;

    virtual std::string describe() const = 0;
};

// Parses a backend spec ("none", "tap:IF", "udp:[LHOST:]LPORT@RHOST:RPORT",
// "stream-listen:HOST:PORT", "stream-connect:HOST:PORT"; IPv6 hosts in
// brackets) into a backend (see backend_spec.hpp for the parsed form).
// Throws xover::Error naming the spec when it is malformed or cannot be
// opened (bad host, port in use, no permission for the tap).
//
// Lifetime: destroy a started backend before its event loop, on the loop
// thread or while the loop is not running one of its callbacks.
std::unique_ptr<Backend> make_backend(const std::string& spec);
// The same from a parsed spec (a NicConfig holds one). BrokerSpec throws:
// the VM makes that backend itself (crossover::make_broker_backend).
std::unique_ptr<Backend> make_backend(const BackendSpec& spec);
// Validates a spec without opening anything (for config checking).
void validate_backend_spec(const std::string& spec);

}  // namespace xover::net
