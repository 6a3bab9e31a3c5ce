#include "vm_api.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>

#include "xover/net/backend_spec.hpp"
#include "xover/vmm/stats.hpp"

namespace xover::cli {

namespace {

const char* to_string(vmm::Machine::RunState state) {
    switch (state) {
    case vmm::Machine::RunState::Starting: return "starting";
    case vmm::Machine::RunState::Running: return "running";
    case vmm::Machine::RunState::Paused: return "paused";
    case vmm::Machine::RunState::Stopping: return "stopping";
    }
    return "unknown";
}

api::Json describe(const vmm::Machine& machine, devices::DeviceManager& devices,
                   std::chrono::steady_clock::time_point started) {
    const vmm::VmConfig& c = machine.config();
    api::Json nics = api::Json::array();
    for (std::size_t i = 0; i < c.nics.size(); ++i) {
        const auto& nic = c.nics[i];
        nics.push_back(api::Json{{"id", i},
                            {"model", std::string(vmm::to_string(nic.model))},
                            {"mac", nic.mac ? nic.mac->to_string() : ""},
                            {"backend", net::to_string(nic.backend)},
                            {"crossover", nic.crossover},
                            {"carrier", devices.carriers().get(unsigned(i)).value_or(false) ? "up" : "down"}});
    }
    auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    return api::Json{{"name", c.name},
                {"state", to_string(machine.run_state())},
                {"pid", ::getpid()},
                {"cpus", c.cpus},
                {"memory_bytes", c.memory_bytes},
                {"kernel", c.kernel.string()},
                {"uptime_ms", uptime.count()},
                {"nics", std::move(nics)}};
}

}  // namespace

// The NIC a path's {id} names.
unsigned nic_index(const vmm::Machine& machine, const std::string& id) {
    unsigned index = 0;
    auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), index);
    if (ec != std::errc() || end != id.data() + id.size() || index >= machine.config().nics.size())
        throw api::ApiError(404, "no NIC {} (this VM has {})", id, machine.config().nics.size());
    return index;
}

std::unique_ptr<api::ApiServer> serve_vm_api(const std::filesystem::path& socket, vmm::Machine& machine,
                                             devices::DeviceManager& devices) {
    auto server = std::make_unique<api::ApiServer>(socket);
    const auto started = std::chrono::steady_clock::now();
    server->route(api::ApiServer::Method::Get, "/vm",
                  [&machine, &devices, started](const api::ApiRequest&) {
                      return api::ApiReply{200, describe(machine, devices, started)};
                  });
    server->route(api::ApiServer::Method::Put, "/vm/pause", [&machine](const api::ApiRequest&) {
        if (!machine.pause())
            throw api::ApiError(409, "the VM is {}", to_string(machine.run_state()));
        return api::ApiReply{204, {}};
    });
    server->route(api::ApiServer::Method::Put, "/vm/resume", [&machine](const api::ApiRequest&) {
        if (!machine.resume()) throw api::ApiError(409, "the VM is stopping");
        return api::ApiReply{204, {}};
    });
    // The status the process exits with is 0: a requested stop is a clean one.
    server->route(api::ApiServer::Method::Put, "/vm/shutdown", [&machine](const api::ApiRequest&) {
        machine.stop(0);
        return api::ApiReply{202, api::Json{{"state", "stopping"}}};
    });
    server->route(api::ApiServer::Method::Get, "/vm/counters", [&machine](const api::ApiRequest&) {
        return api::ApiReply{200, vmm::stats_json(machine.stats())};
    });
    // Down looks like an unplugged cable (net/carrier_gate.hpp).
    server->route(api::ApiServer::Method::Put, "/nics/([^/]+)/carrier", [&machine, &devices](const api::ApiRequest& r) {
        const unsigned index = nic_index(machine, r.captures.at(0));
        const api::Json& state = r.body.is_object() ? r.body.value("state", api::Json()) : api::Json();
        if (state != "up" && state != "down") throw api::ApiError(400, "the body must be {{\"state\": \"up\"}} or {{\"state\": \"down\"}}");
        if (!devices.carriers().set(index, state == "up")) throw api::ApiError(409, "NIC {} is not running", index);
        return api::ApiReply{200, api::Json{{"id", index}, {"carrier", state}}};
    });
    server->start();
    return server;
}

}  // namespace xover::cli
