// The config's enums as text: one place that spells each name.
#include "xover/vmm/config.hpp"

#include <initializer_list>

namespace xover::vmm {

namespace {

// The value among `all` whose name is `text`.
template <typename E>
std::optional<E> by_name(std::string_view text, std::initializer_list<E> all) {
    for (E value : all)
        if (text == to_string(value)) return value;
    return std::nullopt;
}

}  // namespace

std::string_view to_string(NicModel model) { return model == NicModel::VirtioNet ? "virtio-net" : "e1000"; }

std::optional<NicModel> parse_nic_model(std::string_view text) {
    return by_name(text, {NicModel::E1000, NicModel::VirtioNet});
}

std::string_view to_string(SoundModel model) {
    switch (model) {
        case SoundModel::VirtioSnd: return "virtio-snd";
    }
    return "virtio-snd";
}

std::optional<SoundModel> parse_sound_model(std::string_view text) { return by_name(text, {SoundModel::VirtioSnd}); }

std::string_view to_string(CrossoverMode mode) { return mode == CrossoverMode::Window ? "window" : "copy"; }

std::optional<CrossoverMode> parse_crossover_mode(std::string_view text) {
    return by_name(text, {CrossoverMode::Copy, CrossoverMode::Window});
}

std::string_view to_string(SeccompMode mode) {
    switch (mode) {
        case SeccompMode::Kill: return "kill";
        case SeccompMode::Log: return "log";
        case SeccompMode::Off: return "off";
    }
    return "kill";
}

std::optional<SeccompMode> parse_seccomp_mode(std::string_view text) {
    return by_name(text, {SeccompMode::Kill, SeccompMode::Log, SeccompMode::Off});
}

// The words of --stats[=all] and `stats = true | "all"`.
std::string_view to_string(StatsMode mode) {
    return mode == StatsMode::All ? "all" : mode == StatsMode::NonZero ? "true" : "false";
}

std::optional<StatsMode> parse_stats_mode(std::string_view text) {
    return by_name(text, {StatsMode::Off, StatsMode::NonZero, StatsMode::All});
}

}  // namespace xover::vmm
