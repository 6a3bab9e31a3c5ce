#pragma once
#include <memory>
#include "xover/net/backend.hpp"
#include "xover/net/backend_spec.hpp"
namespace xover::net {
// TCP with a 4-byte big-endian length before each frame (QEMU's -netdev
// stream / socket,listen=|connect=). Lossless while connected.
std::unique_ptr<Backend> make_stream_backend(const StreamSpec& spec);
}  // namespace xover::net
