#include "sound_crossover.hpp"

#include <fcntl.h>

#include <spdlog/spdlog.h>

#include "xover/error.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"

namespace xover::devices {

namespace {

std::string describe(const sound::PcmFormat& f) {
    return fmt::format("{} Hz, {} channel{}", f.rate, f.channels, f.channels == 1 ? "" : "s");
}

}  // namespace

SoundCrossover::SoundCrossover(std::string name, std::string peer, const sound::PcmFormat& format)
    : name_(std::move(name)),
      peer_(std::move(peer)),
      format_(format),
      inbox_fd_(crossover::create_sealed_memfd(name_ + ".cable", sound::kCableBytes)),
      inbox_map_(inbox_fd_.get(), sound::kCableBytes),
      inbox_((sound::CableReader::initialize(inbox_map_.bytes(), format), inbox_map_.bytes())) {}

SoundCrossover::~SoundCrossover() {
    if (agent_) agent_->remove_sound(index_);
}

void SoundCrossover::attach(virtio_snd::VirtioSnd& card, crossover::VmAgent& agent, std::uint32_t index) {
    card_ = &card;
    crossover::SoundRegistration reg;
    reg.index = index;
    reg.peer = peer_;
    reg.rate = format_.rate;
    reg.channels = format_.channels;
    int fd = ::fcntl(inbox_fd_.get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw system_error(fmt::format("{}: duplicating the sound cable's memfd", name_));
    reg.inbox = kvm::UniqueFd(fd);
    agent.add_sound(std::move(reg), *this);
    agent_ = &agent;
    index_ = index;
}

bool SoundCrossover::start(sound::Direction direction, const sound::PcmFormat& format) {
    // The card offers only the link's format (VirtioSnd's `only`).
    if (format != format_) return false;
    if (direction == sound::Direction::Input) inbox_.start();
    return true;
}

void SoundCrossover::stop(sound::Direction direction) {
    if (direction == sound::Direction::Input) inbox_.stop();
}

void SoundCrossover::play(std::span<const std::uint8_t> period) {
    std::lock_guard lock(mutex_);
    if (!outbox_) {
        stats_.cable_unlinked_bytes += period.size();
        return;
    }
    auto r = outbox_->write(period);
    stats_.cable_sent_bytes += r.written;
    stats_.cable_dropped_bytes += r.dropped;
}

void SoundCrossover::capture(std::span<std::uint8_t> period) {
    // Our own inbox: only the linked peer writes it, and the reader bounds
    // whatever it finds there. Silence when nobody played.
    auto r = inbox_.read(period);
    std::lock_guard lock(mutex_);
    stats_.cable_received_bytes += r.captured;
    stats_.cable_silence_bytes += r.silence;
    stats_.cable_skipped_bytes += r.skipped;
    stats_.cable_backlog_bytes += r.backlog;
    ++stats_.cable_reads;
}

bool SoundCrossover::plugged(sound::Direction) const {
    std::lock_guard lock(mutex_);
    return !linked_peer_.empty();
}

net::Counters SoundCrossover::counters() const {
    std::lock_guard lock(mutex_);
    net::Counters out;
    stats_.append_to(out);
    return out;
}

void SoundCrossover::sound_link_up(crossover::SoundLinkUp link) {
    try {
        // Refuses a cable the peer could shrink under us (SIGBUS).
        crossover::SharedMapping map(link.peer_inbox.get(), sound::kCableBytes);
        sound::CableWriter writer(map.bytes());
        if (writer.format() != format_)
            throw Error("its cable carries {}, this card {}", describe(writer.format()), describe(format_));
        {
            std::lock_guard lock(mutex_);
            const bool again = linked_peer_ == link.peer_vm;  // a restarted broker links us again
            linked_peer_ = link.peer_vm;
            outbox_.reset();
            outbox_map_ = std::move(map);
            outbox_.emplace(outbox_map_.bytes());
            if (again) return;
            ++stats_.links_up;
        }
        spdlog::info("{}: sound link up: output -> {}.snd{} input, {}.snd{} output -> input ({})", name_, link.peer_vm,
                     link.peer_card, link.peer_vm, link.peer_card, describe(format_));
        set_jacks(true);
    } catch (const std::exception& e) {
        spdlog::warn("{}: sound link from {} not taken: {}", name_, link.peer_vm, e.what());
    }
}

void SoundCrossover::sound_link_down(const crossover::SoundLinkDown& down) {
    if (down.refused) {
        {
            std::lock_guard lock(mutex_);
            ++stats_.links_refused;
        }
        spdlog::warn("{}: sound link with {} refused: {}", name_, down.peer_vm, down.reason);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        if (linked_peer_.empty()) return;
        linked_peer_.clear();
        outbox_.reset();
        outbox_map_.reset();
    }
    spdlog::info("{}: sound link with {} down: {}", name_, down.peer_vm, down.reason);
    set_jacks(false);
}

void SoundCrossover::set_jacks(bool connected) {
    if (!card_) return;
    card_->set_jack_connected(virtio_snd::VirtioSnd::kHeadphoneJack, connected);
    card_->set_jack_connected(virtio_snd::VirtioSnd::kMicrophoneJack, connected);
}

}  // namespace xover::devices
