// make_backend / validate_backend_spec: spec string → backend.
#include <type_traits>

#include "none_backend.hpp"
#include "stream_backend.hpp"
#include "tap_backend.hpp"
#include "udp_backend.hpp"
#include "xover/net/backend.hpp"
#include "xover/net/backend_spec.hpp"
#include "xover/error.hpp"

namespace xover::net {

void validate_backend_spec(const std::string& spec) { (void)parse_backend_spec(spec); }

std::unique_ptr<Backend> make_backend(const std::string& spec) { return make_backend(parse_backend_spec(spec)); }

std::unique_ptr<Backend> make_backend(const BackendSpec& spec) {
    return std::visit(
        [](const auto& parsed) -> std::unique_ptr<Backend> {
            using T = std::decay_t<decltype(parsed)>;
            if constexpr (std::is_same_v<T, NoneSpec>) return make_none_backend();
            else if constexpr (std::is_same_v<T, TapSpec>) return make_tap_backend(parsed);
            else if constexpr (std::is_same_v<T, UdpSpec>) return make_udp_backend(parsed);
            else if constexpr (std::is_same_v<T, StreamSpec>) return make_stream_backend(parsed);
            else if constexpr (std::is_same_v<T, VhostUserSpec>)
                throw Error("backend vhost-user:{} serves a NIC's queues, not frames: the VM builds that NIC itself",
                            parsed.path);
            else throw Error("network backend 'broker' is made by the VM (it needs the broker socket)");
        },
        spec);
}

}  // namespace xover::net
