// `xover ctl`: the control API (docs/openapi.json) from the command line.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "xover/api/api_client.hpp"
#include "xover/api/api_server.hpp"
#include "xover/crossover/broker.hpp"
#include "xover/error.hpp"

namespace xover::cli {

namespace {

struct CtlOptions {
    std::string target;  // a VM's name, or "broker"
    std::vector<std::string> words;  // the verb and its arguments
    std::string broker;  // the broker socket (its directory holds the API sockets)
    std::string api_socket;  // overrides the socket the target's name gives
};

struct Verb {
    const char* method;
    std::string path;
    std::string body;
};

// What each verb asks. A VM's: info, counters, pause, resume, shutdown; the
// broker's: status, vms, vm NAME, links; both: get|put|delete PATH [JSON].
Verb verb_request(bool broker, const std::vector<std::string>& words) {
    const std::string& verb = words.at(0);
    auto argument = [&](const char* what) -> const std::string& {
        if (words.size() < 2) throw Error("ctl: `{}` needs {}", verb, what);
        return words[1];
    };
    if (verb == "get") return {"GET", argument("a path"), ""};
    if (verb == "put") return {"PUT", argument("a path"), words.size() > 2 ? words[2] : ""};
    if (verb == "delete") return {"DELETE", argument("a path"), ""};
    static const std::map<std::string, Verb> vm_verbs{{"info", {"GET", "/vm", ""}},
                                                      {"counters", {"GET", "/vm/counters", ""}},
                                                      {"pause", {"PUT", "/vm/pause", ""}},
                                                      {"resume", {"PUT", "/vm/resume", ""}},
                                                      {"shutdown", {"PUT", "/vm/shutdown", ""}}};
    static const std::map<std::string, Verb> broker_verbs{
        {"status", {"GET", "/status", ""}}, {"vms", {"GET", "/vms", ""}}, {"links", {"GET", "/links", ""}}};
    if (broker && verb == "vm") return {"GET", "/vms/" + argument("a VM name"), ""};
    const auto& verbs = broker ? broker_verbs : vm_verbs;
    if (auto it = verbs.find(verb); it != verbs.end()) return it->second;
    std::string known;
    for (const auto& [name, _] : verbs) known += name + ", ";
    throw Error("ctl: unknown verb '{}' for {}: use {}{}get, put or delete PATH", verb, broker ? "the broker" : "a VM",
                known, broker ? "vm NAME, " : "");
}

int run_ctl(const CtlOptions& o) {
    const bool broker = o.target == "broker";
    const std::filesystem::path broker_socket =
        o.broker.empty() ? crossover::default_broker_path() : std::filesystem::path(o.broker);
    std::filesystem::path socket = o.api_socket;
    if (socket.empty()) socket = broker ? api::broker_api_socket(broker_socket) : api::vm_api_socket(broker_socket, o.target);
    const Verb verb = verb_request(broker, o.words);
    api::ApiResponse r = api::api_call(socket, verb.method, verb.path, verb.body);
    auto body = nlohmann::ordered_json::parse(r.body, nullptr, false);
    if (r.status >= 200 && r.status < 300) {
        if (!r.body.empty()) std::fputs(body.is_discarded() ? r.body.c_str() : (body.dump(2) + "\n").c_str(), stdout);
        return 0;
    }
    std::string message = !body.is_discarded() && body.contains("error") && body["error"].is_string()
                              ? body["error"].get<std::string>()
                              : r.body;
    throw Error("ctl: {} {}: {} ({})", verb.method, verb.path, message, r.status);
}

}  // namespace

CommandAction add_ctl_command(CLI::App& app) {
    auto options = std::make_shared<CtlOptions>();
    auto* ctl = app.add_subcommand("ctl", "Drive a running VM or the broker through its control API");
    ctl->add_option("target", options->target, "A VM's name, or `broker`")->required();
    ctl->add_option("verb", options->words, "What to do, and its arguments")->required();
    ctl->add_option("--broker", options->broker,
                    "The broker socket; the API sockets are next to it (default $XDG_RUNTIME_DIR/xover/broker.sock "
                    "or /run/xover/broker.sock)");
    ctl->add_option("--api-socket", options->api_socket, "The API socket itself (a VM's --api-socket)");
    ctl->footer(R"(A VM's verbs: info, counters, pause, resume, shutdown.
The broker's verbs: status, vms, vm NAME, links.
Either's: get PATH, put PATH [JSON], delete PATH (any path of docs/openapi.json).
Examples:
  xover ctl vm-a pause
  xover ctl vm-a counters
  xover ctl broker links
The answer's JSON goes to stdout; an error's message to stderr, exit status 1.)");
    return [options, ctl]() -> int {
        if (!ctl->parsed()) return -1;
        return run_ctl(*options);
    };
}

}  // namespace xover::cli
