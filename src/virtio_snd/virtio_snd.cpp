// The virtio-snd device: the transport's hooks, the control queue, jack
// events and the I/O queues' requests. What a stream does with them over
// time is in pcm_stream.cpp.
#include "xover/virtio_snd/virtio_snd.hpp"

#include <linux/virtio_ids.h>
#include <linux/virtio_snd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "io_request.hpp"
#include "pcm_stream.hpp"
#include "xover/byte_order.hpp"

namespace xover::virtio_snd {

namespace {

constexpr std::uint32_t kClassMultimediaAudio = 0x040100;
// A control request is at most this long (virtio_snd_pcm_set_params is
// the longest the device reads, 24 bytes).
constexpr std::size_t kMaxControlRequest = 64;
// The largest item size a driver may ask for in an *_INFO query (the
// device's structures are 24-32 bytes; the rest is zero padding).
constexpr std::uint32_t kMaxInfoItemSize = 4096;
constexpr std::size_t kMaxInfoItems = 2;
constexpr std::size_t kMaxControlResponse = sizeof(virtio_snd_hdr) + kMaxInfoItems * kMaxInfoItemSize;

// The rates offered, by virtio-snd rate index.
constexpr std::uint64_t kOfferedRates = (1ull << VIRTIO_SND_PCM_RATE_44100) | (1ull << VIRTIO_SND_PCM_RATE_48000);

// Pin configuration default (HDA spec 7.3.3.31): a 1/8" jack on the front
// of the box; the default device names it to a driver (Linux's virtio-snd
// calls its controls "Headphone Jack" and "Mic Jack" from it).
constexpr std::uint32_t defconf(std::uint32_t device, std::uint32_t color, std::uint32_t association) {
    constexpr std::uint32_t kJackConnectivity = 0u << 30;
    constexpr std::uint32_t kLocationFront = 0x02u << 24;
    constexpr std::uint32_t kConnection18Inch = 0x1u << 16;
    return kJackConnectivity | kLocationFront | device << 20 | kConnection18Inch | color << 12 | association << 4;
}
constexpr std::uint32_t kDeviceHeadphoneOut = 0x2, kDeviceMicIn = 0xa;
constexpr std::uint32_t kColorGreen = 0x4, kColorPink = 0x9;
// Pin capabilities (HDA spec 7.3.4.9): presence detect, headphone drive,
// output, input.
constexpr std::uint32_t kPinPresenceDetect = 1u << 2, kPinHeadphoneDrive = 1u << 3, kPinOutput = 1u << 4,
                        kPinInput = 1u << 5;

template <typename T>
void put(std::span<std::uint8_t> out, const T& value) {
    std::memcpy(out.data(), &value, std::min(sizeof value, out.size()));
}

template <typename T>
T get(std::span<const std::uint8_t> in) {
    T value{};
    std::memcpy(&value, in.data(), std::min(sizeof value, in.size()));
    return value;
}

}  // namespace

std::optional<unsigned> VirtioSnd::rate_of(std::uint8_t rate_index) {
    switch (rate_index) {
    case VIRTIO_SND_PCM_RATE_44100: return 44100;
    case VIRTIO_SND_PCM_RATE_48000: return 48000;
    default: return std::nullopt;
    }
}

VirtioSnd::VirtioSnd(vmm::GuestMemory& memory, vmm::MsiController& msi, vmm::IrqLine& intx, sound::Backend& backend,
                     std::optional<sound::PcmFormat> only)
    : VirtioPciDevice(Identity{.virtio_device_id = VIRTIO_ID_SOUND, .class_code = kClassMultimediaAudio, .subsystem = 1},
                      kQueueCount, kQueueSize, memory, msi, intx),
      backend_(backend),
      only_(only) {
    streams_[kOutputStream] = std::make_unique<PcmStream>(sound::Direction::Output);
    streams_[kInputStream] = std::make_unique<PcmStream>(sound::Direction::Input);
    jack_connected_[kHeadphoneJack] = backend.plugged(sound::Direction::Output);
    jack_connected_[kMicrophoneJack] = backend.plugged(sound::Direction::Input);
}

VirtioSnd::~VirtioSnd() = default;

bool VirtioSnd::offers(const sound::PcmFormat& format) const {
    if (only_) return format == *only_;
    return format.channels >= kMinChannels && format.channels <= kMaxChannels &&
           (format.rate == 44100 || format.rate == 48000);
}

void VirtioSnd::set_clock(Clock clock) {
    std::lock_guard lock(mutex_);
    clock_ = std::move(clock);
}

void VirtioSnd::read_device_config(std::uint64_t offset, std::span<std::uint8_t> data) { device_config(offset, data); }

void VirtioSnd::device_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    virtio_snd_config config{};
    config.jacks = htole32(kJackCount);
    config.streams = htole32(kStreamCount);
    config.chmaps = htole32(kChmapCount);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(&config);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < sizeof config ? bytes[offset + i] : 0;
}

void VirtioSnd::queue_notified(unsigned queue) {
    switch (queue) {
    case kControlQueue: process_control(); break;
    case kEventQueue: flush_events(); break;
    case kTxQueue:
    case kRxQueue: process_io(queue); break;
    default: break;
    }
}

void VirtioSnd::activated() { flush_events(); }

void VirtioSnd::device_reset() {
    for (unsigned s = 0; s < kStreamCount; ++s) {
        if (streams_[s]->state() == PcmStream::State::Running) stream_clock(s, false);
        streams_[s]->reset(backend_);
    }
    pending_events_.clear();
    driver_asked_ = false;
    jack_info_answered_ = jack_info_copied_ = false;
    event_since_jack_info_ = {};
    used_added_ = {};
}

// ------------------------------------------------------------------ control

void VirtioSnd::process_control() {
    std::array<std::uint8_t, kMaxControlRequest> request{};
    std::vector<std::uint8_t> response(kMaxControlResponse);
    bool used = false;
    for (;;) {
        auto status = queue(kControlQueue).pop(chain_);
        // Empty: ask for the next notify (with EVENT_IDX, avail_event), and
        // look again in case a request came meanwhile. Without this a driver
        // that kicks only when asked (Linux) is never heard from again.
        if (status == virtio_net::Virtqueue::PopStatus::Empty) {
            if (queue(kControlQueue).enable_notifications()) continue;
            break;
        }
        if (status == virtio_net::Virtqueue::PopStatus::Broken) {
            needs_reset(virtio_net::to_string(queue(kControlQueue).error()));
            return;
        }
        ++stats_.control_requests;
        driver_asked_ = true;
        std::uint32_t written = 0;
        if (chain_.writable_bytes() < sizeof(virtio_snd_hdr)) {
            ++stats_.control_refused;
            count_hostile();  // nowhere to put even the status
        } else {
            std::size_t length = std::min<std::uint64_t>(chain_.readable_bytes(), request.size());
            std::fill(request.begin(), request.end(), std::uint8_t{0});
            gather_readable(chain_, 0, std::span(request).first(length));
            std::size_t room = std::min<std::uint64_t>(chain_.writable_bytes(), response.size());
            std::span<std::uint8_t> out(response.data(), room);
            std::fill(out.begin(), out.end(), std::uint8_t{0});
            std::size_t answer = control_request(std::span<const std::uint8_t>(request.data(), length), out);
            if (get<virtio_snd_hdr>(out).code != htole32(VIRTIO_SND_S_OK)) ++stats_.control_refused;
            written = std::uint32_t(scatter_writable(chain_, out.first(answer)));
        }
        queue(kControlQueue).add_used(chain_.head(), written);
        used = true;
    }
    if (used) {
        queue(kControlQueue).publish_used();
        maybe_interrupt(kControlQueue);
    }
    if (jack_info_copied_) repeat_events_since_jack_info();
    flush_events();  // the first request lets held events through
    // A START or RELEASE may have completed I/O requests.
    for (unsigned q : {kTxQueue, kRxQueue}) {
        if (!used_added_[q]) continue;
        used_added_[q] = false;
        queue(q).publish_used();
        maybe_interrupt(q);
    }
}

std::size_t VirtioSnd::control_request(std::span<const std::uint8_t> request, std::span<std::uint8_t> response) {
    auto answer = [&](std::uint32_t code) {
        put(response, virtio_snd_hdr{.code = htole32(code)});
        return sizeof(virtio_snd_hdr);
    };
    if (request.size() < sizeof(virtio_snd_hdr)) return answer(VIRTIO_SND_S_BAD_MSG);
    const std::uint32_t code = le32toh(get<virtio_snd_hdr>(request).code);
    if (code == VIRTIO_SND_R_JACK_INFO) {
        event_since_jack_info_ = {};
        jack_info_answered_ = true;
        jack_info_copied_ = false;
    } else if (jack_info_answered_) {
        jack_info_copied_ = true;  // the events go again once the control chain is done
    }
    switch (code) {
    case VIRTIO_SND_R_JACK_INFO:
    case VIRTIO_SND_R_PCM_INFO:
    case VIRTIO_SND_R_CHMAP_INFO: return query_info(code, request, response);
    case VIRTIO_SND_R_PCM_SET_PARAMS:
    case VIRTIO_SND_R_PCM_PREPARE:
    case VIRTIO_SND_R_PCM_RELEASE:
    case VIRTIO_SND_R_PCM_START:
    case VIRTIO_SND_R_PCM_STOP: return answer(pcm_request(code, request));
    case VIRTIO_SND_R_JACK_REMAP:  // VIRTIO_SND_JACK_F_REMAP is not offered
    default: return answer(VIRTIO_SND_S_NOT_SUPP);
    }
}

std::size_t VirtioSnd::query_info(std::uint32_t code, std::span<const std::uint8_t> request,
                                  std::span<std::uint8_t> response) {
    auto refuse = [&] {
        put(response, virtio_snd_hdr{.code = htole32(VIRTIO_SND_S_BAD_MSG)});
        return sizeof(virtio_snd_hdr);
    };
    if (request.size() < sizeof(virtio_snd_query_info)) return refuse();
    const auto query = get<virtio_snd_query_info>(request);
    const std::uint64_t start = le32toh(query.start_id), count = le32toh(query.count), size = le32toh(query.size);
    std::size_t items = 0, item_size = 0;
    switch (code) {
    case VIRTIO_SND_R_JACK_INFO: items = kJackCount, item_size = sizeof(virtio_snd_jack_info); break;
    case VIRTIO_SND_R_PCM_INFO: items = kStreamCount, item_size = sizeof(virtio_snd_pcm_info); break;
    default: items = kChmapCount, item_size = sizeof(virtio_snd_chmap_info); break;
    }
    if (start > items || count > items - start || size < item_size || size > kMaxInfoItemSize ||
        response.size() < sizeof(virtio_snd_hdr) + count * size)
        return refuse();
    put(response, virtio_snd_hdr{.code = htole32(VIRTIO_SND_S_OK)});
    for (std::uint64_t i = 0; i < count; ++i) {
        const unsigned id = unsigned(start + i);
        auto item = response.subspan(sizeof(virtio_snd_hdr) + i * size, size);
        switch (code) {
        case VIRTIO_SND_R_JACK_INFO: {
            virtio_snd_jack_info info{};
            const bool headphone = id == kHeadphoneJack;
            info.hda_reg_defconf = htole32(headphone ? defconf(kDeviceHeadphoneOut, kColorGreen, 1)
                                                     : defconf(kDeviceMicIn, kColorPink, 2));
            info.hda_reg_caps = htole32(headphone ? kPinPresenceDetect | kPinHeadphoneDrive | kPinOutput
                                                  : kPinPresenceDetect | kPinInput);
            info.connected = jack_connected_[id] ? 1 : 0;
            put(item, info);
            break;
        }
        case VIRTIO_SND_R_PCM_INFO: {
            virtio_snd_pcm_info info{};
            info.formats = htole64(1ull << VIRTIO_SND_PCM_FMT_S16);
            info.rates = htole64(only_ ? 1ull << (only_->rate == 44100 ? VIRTIO_SND_PCM_RATE_44100
                                                                          : VIRTIO_SND_PCM_RATE_48000)
                                       : kOfferedRates);
            info.direction = id == kOutputStream ? VIRTIO_SND_D_OUTPUT : VIRTIO_SND_D_INPUT;
            info.channels_min = std::uint8_t(only_ ? only_->channels : kMinChannels);
            info.channels_max = std::uint8_t(only_ ? only_->channels : kMaxChannels);
            put(item, info);
            break;
        }
        default: {
            virtio_snd_chmap_info info{};
            info.direction = id == 0 ? VIRTIO_SND_D_OUTPUT : VIRTIO_SND_D_INPUT;
            info.channels = 2;
            info.positions[0] = VIRTIO_SND_CHMAP_FL;
            info.positions[1] = VIRTIO_SND_CHMAP_FR;
            put(item, info);
            break;
        }
        }
    }
    return sizeof(virtio_snd_hdr) + count * size;
}

std::uint32_t VirtioSnd::pcm_request(std::uint32_t code, std::span<const std::uint8_t> request) {
    if (request.size() < sizeof(virtio_snd_pcm_hdr)) return VIRTIO_SND_S_BAD_MSG;
    const std::uint32_t id = le32toh(get<virtio_snd_pcm_hdr>(request).stream_id);
    if (id >= kStreamCount) return VIRTIO_SND_S_BAD_MSG;
    PcmStream& stream = *streams_[id];
    const unsigned io_queue = id == kOutputStream ? kTxQueue : kRxQueue;
    switch (code) {
    case VIRTIO_SND_R_PCM_SET_PARAMS:
        if (request.size() < sizeof(virtio_snd_pcm_set_params)) return VIRTIO_SND_S_BAD_MSG;
        return stream.set_params(get<virtio_snd_pcm_set_params>(request),
                                 [this](const sound::PcmFormat& f) { return offers(f); });
    case VIRTIO_SND_R_PCM_PREPARE: return stream.prepare();
    case VIRTIO_SND_R_PCM_START: {
        std::uint32_t status = stream.start(backend_);
        if (status == VIRTIO_SND_S_OK) stream_clock(id, true);
        return status;
    }
    case VIRTIO_SND_R_PCM_STOP: {
        std::uint32_t status = stream.stop(backend_);
        if (status == VIRTIO_SND_S_OK) stream_clock(id, false);
        return status;
    }
    default:
        // Requests the driver queued but we have not taken yet go back too.
        if (queue_live(io_queue)) process_io(io_queue);
        return stream.release(
            [this, io_queue](const IoRequest& r, std::uint32_t length) { complete_io(io_queue, r, length); });
    }
}

// ---------------------------------------------------------------------- I/O

void VirtioSnd::process_io(unsigned q) {
    const bool capture = q == kRxQueue;
    const unsigned expected = capture ? kInputStream : kOutputStream;
    for (;;) {
        auto status = queue(q).pop(io_chain_);
        if (status == virtio_net::Virtqueue::PopStatus::Empty) {  // as in process_control
            if (queue(q).enable_notifications()) continue;
            break;
        }
        if (status == virtio_net::Virtqueue::PopStatus::Broken) {
            needs_reset(virtio_net::to_string(queue(q).error()));
            return;
        }
        auto request = parse_io_request(io_chain_, capture);
        if (!request) {
            ++stats_.io_bad_requests;
            count_hostile();
            queue(q).add_used(io_chain_.head(), 0);
            used_added_[q] = true;
            continue;
        }
        if (request->stream_id != expected || !streams_[expected]->takes_io()) {
            ++stats_.io_refused;
            request->write_status(VIRTIO_SND_S_BAD_MSG, 0);
            complete_io(q, *request, 8);
            continue;
        }
        streams_[expected]->queue(std::move(*request));
    }
    if (used_added_[q]) {
        used_added_[q] = false;
        queue(q).publish_used();
        maybe_interrupt(q);
    }
}

void VirtioSnd::complete_io(unsigned q, const IoRequest& request, std::uint32_t used_length) {
    queue(q).add_used(request.head, used_length);
    used_added_[q] = true;
}

void VirtioSnd::period_elapsed(unsigned stream) {
    std::lock_guard lock(mutex_);
    if (stream >= kStreamCount || !live()) return;
    const unsigned q = stream == kOutputStream ? kTxQueue : kRxQueue;
    if (!queue_live(q)) return;
    streams_[stream]->period(backend_, [this, q](const IoRequest& r, std::uint32_t length) { complete_io(q, r, length); });
    if (used_added_[q]) {
        used_added_[q] = false;
        queue(q).publish_used();
        maybe_interrupt(q);
    }
}

void VirtioSnd::stream_clock(unsigned stream, bool running) {
    if (clock_) clock_(stream, running ? streams_[stream]->period_duration() : std::chrono::nanoseconds(0));
}

// ------------------------------------------------------------------- jacks

void VirtioSnd::set_jack_connected(unsigned jack, bool connected) {
    std::lock_guard lock(mutex_);
    if (jack >= kJackCount || jack_connected_[jack] == connected) return;
    jack_connected_[jack] = connected;
    queue_jack_event(jack);
}

bool VirtioSnd::jack_connected(unsigned jack) const {
    std::lock_guard lock(mutex_);
    return jack < kJackCount && jack_connected_[jack];
}

void VirtioSnd::queue_jack_event(unsigned jack) {
    // Before DRIVER_OK the driver learns the state from JACK_INFO.
    if (!live()) return;
    if (pending_events_.size() >= kMaxPendingEvents) {
        ++stats_.jack_events_dropped;
        pending_events_.pop_front();  // the newest state matters most
    }
    virtio_snd_event event{};
    event.hdr.code = htole32(jack_connected_[jack] ? VIRTIO_SND_EVT_JACK_CONNECTED : VIRTIO_SND_EVT_JACK_DISCONNECTED);
    event.data = htole32(jack);
    std::array<std::uint8_t, 8> bytes{};
    put(std::span(bytes), event);
    pending_events_.push_back(bytes);
    if (jack_info_answered_) event_since_jack_info_[jack] = true;
    flush_events();
}

void VirtioSnd::repeat_events_since_jack_info() {
    jack_info_answered_ = jack_info_copied_ = false;
    for (unsigned jack = 0; jack < kJackCount; ++jack)
        if (std::exchange(event_since_jack_info_[jack], false)) {
            ++stats_.jack_events_repeated;
            queue_jack_event(jack);
        }
}

void VirtioSnd::flush_events() {
    if (!driver_asked_ || !queue_live(kEventQueue)) return;
    bool used = false;
    while (!pending_events_.empty()) {
        auto status = queue(kEventQueue).pop(chain_);
        if (status == virtio_net::Virtqueue::PopStatus::Empty) {  // events wait: hear of the next buffer
            if (queue(kEventQueue).enable_notifications()) continue;
            break;
        }
        if (status == virtio_net::Virtqueue::PopStatus::Broken) {
            needs_reset(virtio_net::to_string(queue(kEventQueue).error()));
            return;
        }
        used = true;
        if (chain_.writable_bytes() < sizeof(virtio_snd_event)) {
            count_hostile();
            queue(kEventQueue).add_used(chain_.head(), 0);
            continue;
        }
        std::uint32_t written = std::uint32_t(scatter_writable(chain_, pending_events_.front()));
        pending_events_.pop_front();
        ++stats_.jack_events;
        queue(kEventQueue).add_used(chain_.head(), written);
    }
    if (used) {
        queue(kEventQueue).publish_used();
        maybe_interrupt(kEventQueue);
    }
}

// ----------------------------------------------------------------- counters

net::Counters VirtioSnd::counters() const {
    std::lock_guard lock(mutex_);
    const auto& out_tally = streams_[kOutputStream]->tally();
    const auto& in_tally = streams_[kInputStream]->tally();
    net::Counters out;
    stats_.append_to(out, {.playback_periods = out_tally.periods,
                           .playback_bytes = out_tally.bytes,
                           .underruns = out_tally.xruns,
                           .underrun_bytes = out_tally.xrun_bytes,
                           .capture_periods = in_tally.periods,
                           .capture_bytes = in_tally.bytes,
                           .overruns = in_tally.xruns,
                           .overrun_bytes = in_tally.xrun_bytes,
                           .backend_refused = out_tally.backend_refused + in_tally.backend_refused});
    append_transport_counters(out);
    for (auto& c : backend_.counters()) out.push_back(std::move(c));
    return out;
}

std::vector<net::CounterInfo> VirtioSnd::counter_info() {
    std::vector<net::CounterInfo> out = Stats::info();
    for (auto& c : transport_counter_info()) out.push_back(std::move(c));
    return out;
}

}  // namespace xover::virtio_snd
