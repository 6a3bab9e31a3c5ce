// Syntax of sound backend specs (see xover/sound/spec.hpp).
#include "xover/sound/spec.hpp"

#include <string_view>
#include <type_traits>

#include "xover/error.hpp"

namespace xover::sound {
namespace {

[[noreturn]] void bad(const std::string& spec, std::string_view why) {
    throw Error("invalid sound backend '{}': {} (expected none or wav:OUT.wav[,in=IN.wav])", spec, why);
}

std::filesystem::path wav_path(const std::string& spec, std::string_view text, std::string_view what) {
    if (text.empty()) bad(spec, fmt::format("the {} file name is empty", what));
    if (text.find('\0') != std::string_view::npos) bad(spec, fmt::format("the {} file name holds a NUL", what));
    return std::filesystem::path(std::string(text));
}

}  // namespace

BackendSpec parse_backend_spec(const std::string& spec) {
    std::string_view text(spec);
    if (text == "none") return NoneSpec{};
    if (!text.starts_with("wav:")) bad(spec, "unknown kind");
    text.remove_prefix(4);
    WavSpec wav;
    auto comma = text.find(',');
    wav.out = wav_path(spec, text.substr(0, comma), "output");
    while (comma != std::string_view::npos) {
        text.remove_prefix(comma + 1);
        comma = text.find(',');
        std::string_view option = text.substr(0, comma);
        if (!option.starts_with("in=")) bad(spec, fmt::format("unknown option '{}'", option));
        if (wav.in) bad(spec, "in= is given twice");
        wav.in = wav_path(spec, option.substr(3), "input");
    }
    return wav;
}

std::string to_string(const BackendSpec& spec) {
    return std::visit(
        [](const auto& s) -> std::string {
            using T = std::decay_t<decltype(s)>;
            if constexpr (std::is_same_v<T, NoneSpec>) {
                return "none";
            } else {
                std::string out = "wav:" + s.out.string();
                if (s.in) out += ",in=" + s.in->string();
                return out;
            }
        },
        spec);
}

}  // namespace xover::sound
