// Private to src/devices: a sound card's crossover — the backend of a card
// whose output and input are wired to a peer VM's card (sound/cable.hpp).
//
// The card owns its inbox, a sealed memfd holding the cable it captures
// from, and registers it with the broker. When the broker links it
// (crossover::SoundLinkUp, both VMs having named each other), the peer's
// inbox arrives: this card's output writes into it and the peer's output
// writes into ours. Both jacks then report "connected" to the guest;
// they report "disconnected" when the link goes down (the peer left). No
// guest RAM is shared: each side maps only the other's 68 KiB cable.
//
// Threads: the device calls the Backend methods with its lock held (I/O
// thread, or a vCPU thread for START/STOP); links arrive on the I/O
// thread. `mutex_` orders the two; the device lock is never taken under it.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "xover/crossover/protocol.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/crossover/vm_agent.hpp"
#include "xover/net/counter_set.hpp"
#include "xover/sound/backend.hpp"
#include "xover/sound/cable.hpp"

namespace xover::virtio_snd {
class VirtioSnd;
}

namespace xover::devices {

class SoundCrossover final : public sound::Backend, public crossover::LinkedSound {
public:
    // `format`: the one format the card offers and the link carries.
    SoundCrossover(std::string name, std::string peer, const sound::PcmFormat& format);
    // Leaves the agent (no more links for a card that is gone).
    ~SoundCrossover() override;

    // The card whose jacks follow the link; then registers card `index`
    // with `agent` (sent to the broker at its register_vm()).
    void attach(virtio_snd::VirtioSnd& card, crossover::VmAgent& agent, std::uint32_t index);

    // sound::Backend
    bool start(sound::Direction direction, const sound::PcmFormat& format) override;
    void stop(sound::Direction direction) override;
    void play(std::span<const std::uint8_t> period) override;
    void capture(std::span<std::uint8_t> period) override;
    bool plugged(sound::Direction direction) const override;
    net::Counters counters() const override;

    // crossover::LinkedSound (I/O thread)
    void sound_link_up(crossover::SoundLinkUp link) override;
    void sound_link_down(const crossover::SoundLinkDown& down) override;

private:
    void set_jacks(bool connected);

    std::string name_;  // "VM.snd0", for logs
    std::string peer_;
    sound::PcmFormat format_;
    kvm::UniqueFd inbox_fd_;
    crossover::SharedMapping inbox_map_;
    sound::CableReader inbox_;
    virtio_snd::VirtioSnd* card_ = nullptr;
    crossover::VmAgent* agent_ = nullptr;
    std::uint32_t index_ = 0;

    mutable std::mutex mutex_;
    std::string linked_peer_;  // "" while not linked
    crossover::SharedMapping outbox_map_;
    std::optional<sound::CableWriter> outbox_;

#define XOVER_SOUND_CROSSOVER_COUNTERS(X, V)                                                             \
    X(cable_sent_bytes, "bytes this card played into the peer's input")                                   \
    X(cable_dropped_bytes, "bytes played while the peer was not capturing, or too far behind (gone, as on a cable)") \
    X(cable_unlinked_bytes, "bytes played while no peer was linked (into nothing)")                       \
    X(cable_received_bytes, "bytes captured from the peer's output")                                      \
    X(cable_silence_bytes, "bytes of silence captured: the peer played nothing in time")                  \
    X(cable_skipped_bytes, "bytes the input skipped: it fell behind by more than the cable holds")        \
    X(cable_backlog_bytes, "bytes waiting in the input's cable at its reads, added up (latency: divide by reads)") \
    X(cable_reads, "periods the input read from its cable")                                               \
    X(links_up, "times the link to the peer came up")                                                     \
    X(links_refused, "times the broker refused the link (a format mismatch)")
    struct Stats {
        XOVER_COUNTER_SET(XOVER_SOUND_CROSSOVER_COUNTERS, "", std::uint64_t)
    } stats_;
};

}  // namespace xover::devices
