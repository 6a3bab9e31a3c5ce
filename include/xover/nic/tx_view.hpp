// A NIC model's TX view: completing transmit work in that NIC's TX ring
// from any process — the sender's own, or a crossover peer's that moved
// the frames (tx_handoff.hpp). It works on the sender's guest memory and
// its shared page only (the queue description in its TxHandoff, ICR/IMS in
// its state page), so it holds no state of the sender's process.
//
// One implementation per model, in that model's folder; the crossover
// engine picks one by the peer's model and never includes a model header.
//
// Tokens are the model's: e1000: EOP descriptor index | command << 16
// (DD is written when RS is set); virtio-net: the chain's head id (a used
// element of length 0).
#pragma once

#include <cstdint>
#include <memory>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/nic/tx_handoff.hpp"
#include "xover/vmm/guest_memory.hpp"

namespace xover::nic {

// How the TX interrupt reaches the sender's guest after finish().
enum class TxIrq {
    None,    // nothing to signal (masked, suppressed, or nothing reported)
    Signal,  // write the sender's irqfd (its INTx line)
    Owner,   // only the sender's process may raise it (its moderation
             // timers, or an interrupt vector no peer holds): hand it over
};

class TxView {
public:
    virtual ~TxView() = default;
    // Reads the sender's TX queue description (the caller holds the
    // handoff lock). False: the description is unusable; complete nothing.
    virtual bool begin(vmm::GuestMemory& sender_memory, TxHandoff& handoff) = 0;
    // Completes one token (bounded: a token outside the ring is ignored).
    virtual void complete(std::uint32_t token) = 0;
    // Publishes the completions; true when the sender's guest wants a TX
    // interrupt for them (RS with DD written; virtio: its event index).
    virtual bool finish() = 0;
    // From a process other than the sender's: raises the TX cause in the
    // sender's state page as its registers allow and says how to signal.
    virtual TxIrq signal_remote(SharedNicState& sender_state) = 0;
};

}  // namespace xover::nic

// Each model's factory (defined in its own library).
namespace xover::e1000 {
std::unique_ptr<nic::TxView> make_tx_view();
}
namespace xover::virtio_net {
std::unique_ptr<nic::TxView> make_tx_view();
}
