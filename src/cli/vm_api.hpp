// A VM's control API (docs/openapi.json, x-socket "vm"): its state and
// configuration, pause, resume and shutdown, its NICs' carriers.
#pragma once

#include <filesystem>
#include <memory>

#include "xover/api/api_server.hpp"
#include "xover/devices/device_manager.hpp"
#include "xover/vmm/machine.hpp"

namespace xover::cli {

// Serves the VM's API on `socket` until the result is destroyed, which
// must happen before the machine (and the device manager) go.
std::unique_ptr<api::ApiServer> serve_vm_api(const std::filesystem::path& socket, vmm::Machine& machine,
                                             devices::DeviceManager& devices);

}  // namespace xover::cli
