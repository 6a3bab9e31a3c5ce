#include "broker_api.hpp"

#include <string>

#include "xover/crossover/broker.hpp"
#include "xover/vmm/seccomp.hpp"

namespace xover::cli {

using api::ApiError;
using api::ApiReply;
using api::ApiRequest;
using api::Json;
using Method = api::ApiServer::Method;

std::unique_ptr<api::ApiServer> serve_broker_api(const std::filesystem::path& api_socket,
                                                 const std::filesystem::path& broker_socket, vmm::SeccompMode mode) {
    auto server = std::make_unique<api::ApiServer>(api_socket);
    auto status = [broker_socket] {
        Json doc = Json::parse(crossover::request_status(broker_socket, true), nullptr, false);
        if (doc.is_discarded()) throw ApiError(500, "the broker's status is not JSON");
        return doc;
    };
    server->route(Method::Get, "/status", [status, broker_socket](const ApiRequest& r) {
        auto format = r.query.find("format");
        if (format == r.query.end() || format->second == "json") return ApiReply{200, status()};
        if (format->second == "text") return ApiReply::plain_text(crossover::request_status(broker_socket, false));
        throw ApiError(400, "format={} is not json or text", format->second);
    });
    server->route(Method::Get, "/vms", [status](const ApiRequest&) { return ApiReply{200, status()["vms"]}; });
    server->route(Method::Get, "/vms/([^/]+)", [status](const ApiRequest& r) {
        const Json doc = status();  // kept: the loop walks a part of it
        for (const auto& vm : doc["vms"])
            if (vm["name"] == r.captures.at(0)) return ApiReply{200, vm};
        throw ApiError(404, "no VM named \"{}\" is registered", r.captures.at(0));
    });
    server->route(Method::Get, "/links", [status](const ApiRequest&) { return ApiReply{200, status()["links"]}; });
    // Its request handler's own filter, once the broker's is loaded (Broker::run).
    server->set_worker_setup(
        [mode] { return vmm::apply_thread_seccomp(mode, vmm::SeccompProfile::Broker, vmm::ThreadKind::ApiWorker); });
    server->start();
    return server;
}

}  // namespace xover::cli
