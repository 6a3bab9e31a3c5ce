#pragma once
#include <memory>
#include "xover/net/backend.hpp"
namespace xover::net {
// A cable to nowhere: every frame sent is dropped and counted; nothing arrives.
std::unique_ptr<Backend> make_none_backend();
}  // namespace xover::net
