// The broker's control API (docs/openapi.json, "broker" paths): the VMs,
// their NICs and the links, as `xover status --json` shows them.
#pragma once

#include <filesystem>
#include <memory>

#include "xover/api/api_server.hpp"
#include "xover/vmm/config.hpp"

namespace xover::cli {

// Serves on `api_socket` until the result is destroyed. Each request is
// answered by asking the broker on `broker_socket` for its status, as any
// client would: the API thread shares no state with the broker's loop.
// Its request handler loads its own seccomp filter (`mode`) once the
// broker has loaded its.
std::unique_ptr<api::ApiServer> serve_broker_api(const std::filesystem::path& api_socket,
                                                 const std::filesystem::path& broker_socket, vmm::SeccompMode mode);

}  // namespace xover::cli
