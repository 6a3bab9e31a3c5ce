// make_backend: the sound backend a spec names.
#include <type_traits>

#include "none_backend.hpp"
#include "wav_backend.hpp"
#include "xover/sound/backend.hpp"

namespace xover::sound {

std::unique_ptr<Backend> make_backend(const BackendSpec& spec) {
    return std::visit(
        [](const auto& s) -> std::unique_ptr<Backend> {
            using T = std::decay_t<decltype(s)>;
            if constexpr (std::is_same_v<T, NoneSpec>)
                return std::make_unique<NoneBackend>();
            else
                return make_wav_backend(s);
        },
        spec);
}

}  // namespace xover::sound
