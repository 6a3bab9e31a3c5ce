// Private to src/sound: the `wav:OUT.wav[,in=IN.wav]` backend.
#pragma once

#include <memory>

#include "xover/sound/backend.hpp"

namespace xover::sound {

// Throws xover::Error (see make_backend).
std::unique_ptr<Backend> make_wav_backend(const WavSpec& spec);

}  // namespace xover::sound
