// Private to src/sound: the `none` backend plays into nothing and captures
// silence; nothing is plugged into its jacks.
#pragma once

#include <algorithm>

#include "xover/sound/backend.hpp"

namespace xover::sound {

class NoneBackend final : public Backend {
public:
    bool start(Direction, const PcmFormat&) override { return true; }
    void stop(Direction) override {}
    void play(std::span<const std::uint8_t>) override {}
    void capture(std::span<std::uint8_t> period) override { std::fill(period.begin(), period.end(), std::uint8_t{0}); }
    bool plugged(Direction) const override { return false; }
};

}  // namespace xover::sound
