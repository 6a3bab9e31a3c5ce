// Sound card settings: the --sound spec string, and the checks its values
// share with [[sound]] tables.
#include <charconv>

#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm {

namespace config_detail {

SoundModel check_sound_model(const std::string& value, const std::string& origin) {
    if (auto model = parse_sound_model(value)) return *model;
    throw Error("{}: {} is not a sound model (use virtio-snd)", origin, quote_value(value));
}

unsigned check_sound_rate(std::int64_t value, const std::string& origin) {
    if (value != 44100 && value != 48000) throw Error("{}: {} Hz is not offered (use 44100 or 48000)", origin, value);
    return unsigned(value);
}

unsigned check_sound_channels(std::int64_t value, const std::string& origin) {
    if (value != 1 && value != 2) throw Error("{}: {} channels are not offered (use 1 or 2)", origin, value);
    return unsigned(value);
}

void finish_sound(SoundConfig& sound, std::optional<unsigned> rate, std::optional<unsigned> channels,
                  const std::string& origin) {
    if (sound.crossover && !std::holds_alternative<sound::NoneSpec>(sound.backend))
        throw Error("{}: a crossover card plays into its peer and captures from it; backend={} cannot be used with "
                    "crossover={}",
                    origin, sound::to_string(sound.backend), *sound.crossover);
    if (rate || channels || sound.crossover)
        sound.format = sound::PcmFormat{.channels = channels.value_or(kDefaultCrossoverFormat.channels),
                                        .rate = rate.value_or(kDefaultCrossoverFormat.rate)};
}

sound::BackendSpec check_sound_backend(const std::string& value, const std::string& origin) {
    try {
        return sound::parse_backend_spec(value);
    } catch (const Error& e) {
        throw Error("{}: {}", origin, e.what());
    }
}

std::string check_sound_peer(const std::string& value, const std::string& origin) {
    if (value.empty()) throw Error("{}: empty crossover peer name", origin);
    if (value == "auto")
        throw Error("{}: \"auto\" is for NICs; a sound card's crossover names its one peer VM", origin);
    if (value.find_first_of("+,") != std::string::npos)
        throw Error("{}: {} names more than one VM; a sound card has one crossover peer", origin, quote_value(value));
    return check_vm_name(value, origin);
}

void check_sound_count(std::size_t index, const std::string& origin) {
    if (index >= kMaxSounds) throw Error("{}: a second sound card (a VM has at most one)", origin);
}

sound::BackendSpec anchor_sound_backend(sound::BackendSpec spec, const std::filesystem::path& base_dir) {
    if (auto* wav = std::get_if<sound::WavSpec>(&spec)) {
        wav->out = anchor(wav->out, base_dir);
        if (wav->in) wav->in = anchor(*wav->in, base_dir);
    }
    return spec;
}

void check_sound_files(const SoundConfig& sound, const std::string& origin) {
    const auto* wav = std::get_if<sound::WavSpec>(&sound.backend);
    if (!wav) return;
    check_writable_file(wav->out, origin);
    if (!wav->in) return;
    check_readable_file(*wav->in, origin);
    std::error_code ec;
    if (wav->out.lexically_normal() == wav->in->lexically_normal() || std::filesystem::equivalent(wav->out, *wav->in, ec))
        throw Error("{}: {} is both the output and the input (recording would overwrite what is played in)", origin,
                    quote_value(wav->out.string()));
}

}  // namespace config_detail

SoundConfig parse_sound_spec(std::string_view spec, const std::string& where) {
    using namespace config_detail;
    SoundConfig sound;
    std::optional<std::string> backend;  // the backend spec's text, put back together
    std::optional<unsigned> rate, channels;
    bool in_backend = false;             // the previous item was backend= or continued it
    for_each_spec_item(
        spec, where, kSoundKeys, [&](const std::string& model) { sound.model = check_sound_model(model, where); },
        [&](const std::string& key, const std::string& value, std::string_view item, const std::string& origin) {
            if (key == "model") {
                sound.model = check_sound_model(value, origin);
                in_backend = false;
            } else if (key == "backend") {
                backend = value;
                in_backend = true;
            } else if (key == "crossover") {
                sound.crossover = check_sound_peer(value, origin);
                in_backend = false;
            } else if (key == "rate" || key == "channels") {
                std::int64_t number = -1;
                auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
                if (ec != std::errc{} || ptr != value.data() + value.size())
                    throw Error("{}: {} is not a number", origin, quote_value(value));
                if (key == "rate")
                    rate = check_sound_rate(number, origin);
                else
                    channels = check_sound_channels(number, origin);
                in_backend = false;
            } else if (in_backend) {
                // "backend=wav:OUT.wav,in=IN.wav": the comma split the backend's own option.
                *backend += ',';
                *backend += item;
            } else {
                return false;
            }
            return true;
        });
    if (backend) sound.backend = check_sound_backend(*backend, fmt::format("{}: backend", where));
    finish_sound(sound, rate, channels, where);
    return sound;
}

}  // namespace xover::vmm
