#pragma once
#include <memory>
#include "xover/net/backend.hpp"
#include "xover/net/backend_spec.hpp"
namespace xover::net {
// A Linux tap interface (created if missing, brought up). Lossy like a wire.
std::unique_ptr<Backend> make_tap_backend(const TapSpec& spec);
}  // namespace xover::net
