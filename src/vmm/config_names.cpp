// The config's enums as text: one place that spells each name.
#include "xover/vmm/config.hpp"

namespace xover::vmm {

std::string_view to_string(NicModel model) { return model == NicModel::VirtioNet ? "virtio-net" : "e1000"; }

std::optional<NicModel> parse_nic_model(std::string_view text) {
    for (NicModel model : {NicModel::E1000, NicModel::VirtioNet})
        if (text == to_string(model)) return model;
    return std::nullopt;
}

std::string_view to_string(CrossoverMode mode) { return mode == CrossoverMode::Window ? "window" : "copy"; }

std::optional<CrossoverMode> parse_crossover_mode(std::string_view text) {
    for (CrossoverMode mode : {CrossoverMode::Copy, CrossoverMode::Window})
        if (text == to_string(mode)) return mode;
    return std::nullopt;
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
    for (SeccompMode mode : {SeccompMode::Kill, SeccompMode::Log, SeccompMode::Off})
        if (text == to_string(mode)) return mode;
    return std::nullopt;
}

}  // namespace xover::vmm
