// The parsed form of a sound backend spec (`--sound ...,backend=SPEC`, a
// `[[sound]]` table's `backend`). Parsing checks syntax only: files are
// opened when the device is built (sound/backend.hpp).
//
//   none                     plays into nothing, captures silence
//   wav:OUT.wav[,in=IN.wav]  playback is written to OUT.wav; capture reads
//                            IN.wav (silence without one, and after its end)
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <variant>

namespace xover::sound {

struct NoneSpec {};

struct WavSpec {
    std::filesystem::path out;
    std::optional<std::filesystem::path> in;
};

using BackendSpec = std::variant<NoneSpec, WavSpec>;

// Throws xover::Error naming the spec and what is wrong with it.
BackendSpec parse_backend_spec(const std::string& spec);
// The spec as parse_backend_spec reads it.
std::string to_string(const BackendSpec& spec);

}  // namespace xover::sound
