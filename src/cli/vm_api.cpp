#include "vm_api.hpp"

#include <unistd.h>

#include <chrono>

#include "xover/net/backend_spec.hpp"

namespace xover::cli {

namespace {

const char* to_string(vmm::Machine::RunState state) {
    switch (state) {
    case vmm::Machine::RunState::Running: return "running";
    case vmm::Machine::RunState::Paused: return "paused";
    case vmm::Machine::RunState::Stopping: return "stopping";
    }
    return "unknown";
}

api::Json describe(const vmm::Machine& machine, std::chrono::steady_clock::time_point started) {
    const vmm::VmConfig& c = machine.config();
    api::Json nics = api::Json::array();
    for (std::size_t i = 0; i < c.nics.size(); ++i) {
        const auto& nic = c.nics[i];
        nics.push_back(api::Json{{"id", i},
                            {"model", std::string(vmm::to_string(nic.model))},
                            {"mac", nic.mac ? nic.mac->to_string() : ""},
                            {"backend", net::to_string(nic.backend)},
                            {"crossover", nic.crossover}});
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

std::unique_ptr<api::ApiServer> serve_vm_api(const std::filesystem::path& socket, vmm::Machine& machine) {
    auto server = std::make_unique<api::ApiServer>(socket);
    const auto started = std::chrono::steady_clock::now();
    server->route(api::ApiServer::Method::Get, "/vm",
                  [&machine, started](const api::ApiRequest&) { return api::ApiReply{200, describe(machine, started)}; });
    server->route(api::ApiServer::Method::Put, "/vm/pause", [&machine](const api::ApiRequest&) {
        if (!machine.pause()) throw api::ApiError(409, "the VM is stopping");
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
    server->start();
    return server;
}

}  // namespace xover::cli
