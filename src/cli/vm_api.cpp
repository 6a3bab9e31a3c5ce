#include "vm_api.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <chrono>

#include "xover/vmm/seccomp.hpp"
#include "xover/crossover/protocol.hpp"
#include "xover/net/backend_spec.hpp"
#include "xover/sound/spec.hpp"
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

api::Json describe(const vmm::Machine& machine, devices::DeviceManager& devices) {
    const vmm::VmConfig& c = machine.config();
    api::Json nics = api::Json::array();
    for (std::size_t i = 0; i < c.nics.size(); ++i) {
        const auto& nic = c.nics[i];
        nics.push_back(api::Json{{"id", i},
                            {"model", std::string(vmm::to_string(nic.model))},
                            {"mac", nic.mac ? nic.mac->to_string() : ""},
                            {"backend", net::to_string(nic.backend)},
                            {"crossover", nic.crossover},
                            {"peers", devices.named_peers(unsigned(i))},
                            {"carrier", devices.carrier(unsigned(i)).value_or(false) ? "up" : "down"}});
    }
    api::Json sounds = api::Json::array();
    for (std::size_t i = 0; i < c.sounds.size(); ++i) {
        const auto& sound = c.sounds[i];
        sounds.push_back(api::Json{{"id", i},
                                   {"model", std::string(vmm::to_string(sound.model))},
                                   {"backend", sound::to_string(sound.backend)},
                                   {"crossover", sound.crossover.value_or("")}});
    }
    return api::Json{{"name", c.name},
                {"state", to_string(machine.run_state())},
                {"pid", ::getpid()},
                {"cpus", c.cpus},
                {"memory_bytes", c.memory_bytes},
                {"kernel", c.kernel.string()},
                {"uptime_ms", machine.uptime().count()},
                {"nics", std::move(nics)},
                {"sounds", std::move(sounds)}};
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
    server->route(api::ApiServer::Method::Get, "/vm",
                  [&machine, &devices](const api::ApiRequest&) {
                      return api::ApiReply{200, describe(machine, devices)};
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
        if (!devices.set_carrier(index, state == "up")) throw api::ApiError(409, "NIC {} is not running", index);
        return api::ApiReply{200, api::Json{{"id", index}, {"carrier", state}}};
    });
    // Runtime links: GET says whether `peer` is linked now; PUT and DELETE
    // add it to or remove it from the crossover NICs' peers (?nic=N: one
    // NIC), and the broker applies the link rules: 202, the link follows.
    auto link_state = [&devices](const std::string& peer) {
        api::Json links = api::Json::array();
        for (const auto& l : devices.agent().live_links())
            if (l.peer_vm == peer)
                links.push_back(api::Json{{"id", l.link_id},
                                          {"nic", l.local_nic},
                                          {"peer_nic", l.peer_nic},
                                          {"mode", std::string(crossover::to_string(l.mode))},
                                          {"wiring", l.automatic ? "auto" : "static"}});
        api::Json named = api::Json::array();
        for (auto index : devices.agent().nic_indices()) {
            auto peers = devices.named_peers(index);
            if (std::find(peers.begin(), peers.end(), peer) != peers.end()) named.push_back(index);
        }
        const bool up = !links.empty();
        return api::Json{{"peer", peer}, {"state", up ? "up" : "down"}, {"named_by_nics", named}, {"links", links}};
    };
    server->route(api::ApiServer::Method::Get, "/links/([^/]+)", [link_state](const api::ApiRequest& r) {
        return api::ApiReply{200, link_state(r.captures.at(0))};
    });
    auto change = [&devices, link_state](const api::ApiRequest& r, devices::DeviceManager::PeerChange how) {
        const std::string& peer = r.captures.at(0);
        std::optional<unsigned> nic;
        if (auto it = r.query.find("nic"); it != r.query.end()) {
            unsigned index = 0;
            auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), index);
            if (ec != std::errc() || end != it->second.data() + it->second.size())
                throw api::ApiError(400, "nic={} is not a NIC index", it->second);
            nic = index;
        }
        if (!devices.change_peer(peer, how, nic)) {
            if (nic) throw api::ApiError(404, "NIC {} takes no part in the crossover", *nic);
            throw api::ApiError(409, "no NIC of this VM takes part in the crossover (crossover = [...] or \"auto\" "
                                     "in its config)");
        }
        api::Json reply = link_state(peer);
        reply["requested"] = how == devices::DeviceManager::PeerChange::Link ? "link" : "unlink";
        return api::ApiReply{202, reply};
    };
    server->route(api::ApiServer::Method::Put, "/links/([^/]+)", [change](const api::ApiRequest& r) {
        return change(r, devices::DeviceManager::PeerChange::Link);
    });
    server->route(api::ApiServer::Method::Delete, "/links/([^/]+)", [change](const api::ApiRequest& r) {
        return change(r, devices::DeviceManager::PeerChange::Unlink);
    });
    // Its request handler's own filter, once the VM's is loaded (Machine::run).
    server->set_worker_setup([mode = machine.config().seccomp] {
        return vmm::apply_thread_seccomp(mode, vmm::SeccompProfile::Vmm, vmm::ThreadKind::ApiWorker);
    });
    server->start();
    return server;
}

}  // namespace xover::cli
