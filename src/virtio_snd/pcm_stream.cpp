#include "pcm_stream.hpp"

#include <linux/virtio_snd.h>

#include <algorithm>

#include "xover/virtio_snd/virtio_snd.hpp"

namespace xover::virtio_snd {

std::uint32_t PcmStream::set_params(const virtio_snd_pcm_set_params& p,
                                    const std::function<bool(const sound::PcmFormat&)>& offered) {
    if (state_ != State::Idle && state_ != State::ParamsSet && state_ != State::Prepared && state_ != State::Released)
        return VIRTIO_SND_S_BAD_MSG;
    const std::uint32_t buffer_bytes = le32toh(p.buffer_bytes);
    const std::uint32_t period_bytes = le32toh(p.period_bytes);
    if (le32toh(p.features) != 0) return VIRTIO_SND_S_NOT_SUPP;  // none offered
    if (p.format != VIRTIO_SND_PCM_FMT_S16) return VIRTIO_SND_S_NOT_SUPP;
    auto rate = VirtioSnd::rate_of(p.rate);
    if (!rate) return VIRTIO_SND_S_NOT_SUPP;
    sound::PcmFormat format{.channels = p.channels, .rate = *rate};
    if (!offered(format)) return VIRTIO_SND_S_NOT_SUPP;
    // Whole frames, at least one per period, at most the longest period
    // the clock keeps (a bound on the scratch buffer the guest chooses).
    if (period_bytes == 0 || period_bytes % format.frame_bytes() != 0 ||
        period_bytes > format.bytes_per_second() * VirtioSnd::kMaxPeriodMs / 1000 || buffer_bytes < period_bytes)
        return VIRTIO_SND_S_BAD_MSG;
    format_ = format;
    buffer_bytes_ = buffer_bytes;
    period_bytes_ = period_bytes;
    state_ = State::ParamsSet;
    return VIRTIO_SND_S_OK;
}

std::uint32_t PcmStream::prepare() {
    if (state_ != State::ParamsSet && state_ != State::Prepared && state_ != State::Released)
        return VIRTIO_SND_S_BAD_MSG;
    scratch_.assign(period_bytes_, 0);
    state_ = State::Prepared;
    return VIRTIO_SND_S_OK;
}

std::uint32_t PcmStream::start(sound::Backend& backend) {
    if (state_ != State::Prepared && state_ != State::Stopped) return VIRTIO_SND_S_BAD_MSG;
    backend_took_ = backend.start(direction_, format_);
    if (!backend_took_) ++tally_.backend_refused;
    state_ = State::Running;
    return VIRTIO_SND_S_OK;
}

std::uint32_t PcmStream::stop(sound::Backend& backend) {
    if (state_ != State::Running) return VIRTIO_SND_S_BAD_MSG;
    if (backend_took_) backend.stop(direction_);
    state_ = State::Stopped;
    return VIRTIO_SND_S_OK;
}

std::uint32_t PcmStream::release(const Complete& complete) {
    if (state_ != State::Prepared && state_ != State::Stopped) return VIRTIO_SND_S_BAD_MSG;
    // The driver gets every queued request back before the stream goes
    // (§5.14.6.6.5.2); capture requests carry what was filled so far.
    const bool capture = direction_ == sound::Direction::Input;
    for (auto& r : requests_) {
        r.write_status(VIRTIO_SND_S_OK, 0);
        complete(r, r.used_length(capture));
    }
    requests_.clear();
    state_ = State::Released;
    return VIRTIO_SND_S_OK;
}

bool PcmStream::period(sound::Backend& backend, const Complete& complete) {
    if (state_ != State::Running) return false;
    ++tally_.periods;
    bool completed = false;
    std::span<std::uint8_t> period(scratch_);
    if (direction_ == sound::Direction::Output) {
        std::size_t got = 0;
        while (got < period.size() && !requests_.empty()) {
            auto& r = requests_.front();
            got += r.take(period.subspan(got));
            if (r.remaining() != 0) break;
            // Latency: what is still queued ahead of the device's output.
            IoRequest done = std::move(r);
            requests_.pop_front();
            done.write_status(VIRTIO_SND_S_OK, queued_bytes());
            complete(done, done.used_length(false));
            completed = true;
        }
        if (got < period.size()) {
            ++tally_.xruns;
            tally_.xrun_bytes += period.size() - got;
        }
        tally_.bytes += got;
        if (got != 0 && backend_took_) backend.play(period.first(got));
    } else {
        // A source that waits for the guest gives only what the queued
        // requests take (in whole frames), so none of it is lost.
        if (backend_took_ && backend.capture_waits_for_guest())
            period = period.first(capture_room());  // empty with no room: nothing is read
        if (!backend_took_)
            std::fill(period.begin(), period.end(), std::uint8_t{0});
        else if (!period.empty())
            backend.capture(period);
        std::size_t put = 0;
        // Until a request has room left (a full period fills nothing more);
        // a request with no room at all completes when its turn comes.
        while (!requests_.empty()) {
            auto& r = requests_.front();
            put += r.fill(period.subspan(put));
            if (r.remaining() != 0) break;
            IoRequest done = std::move(r);
            requests_.pop_front();
            // Latency: what the device captured after this buffer's last
            // byte and still holds (the rest of this period).
            done.write_status(VIRTIO_SND_S_OK, std::uint32_t(period.size() - put));
            complete(done, done.used_length(true));
            completed = true;
        }
        if (put < scratch_.size()) ++tally_.xruns;
        tally_.xrun_bytes += period.size() - put;
        tally_.bytes += put;
    }
    return completed;
}

void PcmStream::reset(sound::Backend& backend) {
    if (state_ == State::Running && backend_took_) backend.stop(direction_);
    requests_.clear();
    state_ = State::Idle;
    backend_took_ = false;
}

std::size_t PcmStream::capture_room() const {
    const std::size_t frame = format_.frame_bytes();
    const std::size_t room = std::min<std::size_t>(queued_bytes(), scratch_.size());
    // Up to a whole frame: a request that ends mid-frame (no correct
    // driver sends one) gets its bytes, and the rest of that frame is lost.
    return std::min(scratch_.size(), (room + frame - 1) / frame * frame);
}

std::uint32_t PcmStream::queued_bytes() const {
    std::uint64_t sum = 0;
    for (const auto& r : requests_) sum += r.remaining();
    return std::uint32_t(std::min<std::uint64_t>(sum, UINT32_MAX));
}

}  // namespace xover::virtio_snd
