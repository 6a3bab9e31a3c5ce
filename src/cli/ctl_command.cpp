// `xover ctl`: the control API (docs/openapi.json) from the command line.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "openapi_document.hpp"
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
    std::string method;
    std::string path;
    std::string body;
};

// One verb of `xover ctl`, as docs/openapi.json (compiled in) declares it:
// an operation's x-xover-ctl names it; the path's {parameters} take the
// verb's arguments in order, then x-xover-ctl's "body", if any, names the
// JSON field the next argument goes in.
struct CtlVerb {
    std::string name;
    std::string method;  // GET, PUT, DELETE
    std::string path;    // with its {parameters}
    std::vector<std::string> params;
    std::string body_field;

    std::string usage() const {
        std::string text = name;
        for (const auto& p : params) text += " " + upper(p);
        if (!body_field.empty()) text += " " + upper(body_field);
        return text;
    }

    static std::string upper(std::string text) {
        for (char& c : text) c = char(std::toupper(static_cast<unsigned char>(c)));
        return text;
    }
};

std::vector<std::string> path_params(const std::string& path) {
    std::vector<std::string> params;
    for (std::size_t open = path.find('{'); open != std::string::npos; open = path.find('{', open + 1))
        params.push_back(path.substr(open + 1, path.find('}', open) - open - 1));
    return params;
}

// The verbs of a VM's API or the broker's (the paths whose x-socket is `kind`).
std::vector<CtlVerb> ctl_verbs(const std::string& kind) {
    static const nlohmann::json doc = nlohmann::json::parse(kOpenApiDocument);
    std::vector<CtlVerb> verbs;
    for (const auto& [path, item] : doc.at("paths").items()) {
        if (item.value("x-socket", "") != kind) continue;
        for (const auto& [method, op] : item.items()) {
            if (!op.is_object() || !op.contains("x-xover-ctl")) continue;
            const auto& ctl = op.at("x-xover-ctl");
            verbs.push_back({ctl.at("verb").get<std::string>(), CtlVerb::upper(method), path, path_params(path),
                             ctl.value("body", "")});
        }
    }
    std::sort(verbs.begin(), verbs.end(), [](const CtlVerb& a, const CtlVerb& b) { return a.name < b.name; });
    return verbs;
}

std::string usage_list(const std::string& kind) {
    std::string text;
    for (const auto& v : ctl_verbs(kind)) text += (text.empty() ? "" : ", ") + v.usage();
    return text;
}

// A path parameter as the URL takes it: unreserved characters as they are, the rest %XX.
std::string path_segment(const std::string& value) {
    std::string out;
    for (unsigned char c : value) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += char(c);
        else out += fmt::format("%{:02X}", c);
    }
    return out;
}

// What the verb asks: a verb of the target's API, or get|put|delete PATH [JSON].
Verb verb_request(bool broker, const std::vector<std::string>& words) {
    const std::string& verb = words.at(0);
    auto argument = [&](const char* what) -> const std::string& {
        if (words.size() < 2) throw Error("ctl: `{}` needs {}", verb, what);
        return words[1];
    };
    if (verb == "get") return {"GET", argument("a path"), ""};
    if (verb == "put") return {"PUT", argument("a path"), words.size() > 2 ? words[2] : ""};
    if (verb == "delete") return {"DELETE", argument("a path"), ""};
    const std::string kind = broker ? "broker" : "vm";
    for (const auto& v : ctl_verbs(kind)) {
        if (v.name != verb) continue;
        const std::size_t wanted = v.params.size() + (v.body_field.empty() ? 0 : 1);
        if (words.size() - 1 != wanted) throw Error("ctl: use `{}`", v.usage());
        Verb request{v.method, v.path, ""};
        for (std::size_t i = 0; i < v.params.size(); ++i) {
            const std::string placeholder = "{" + v.params[i] + "}";
            request.path.replace(request.path.find(placeholder), placeholder.size(), path_segment(words[1 + i]));
        }
        if (!v.body_field.empty()) request.body = nlohmann::json{{v.body_field, words.back()}}.dump();
        return request;
    }
    throw Error("ctl: unknown verb '{}' for {}: use {}, or get, put or delete PATH", verb,
                broker ? "the broker" : "a VM", usage_list(kind));
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
    ctl->footer([] {
        return "A VM's verbs: " + usage_list("vm") + ".\nThe broker's verbs: " + usage_list("broker") +
               ".\nEither's: get PATH, put PATH [JSON], delete PATH (any path of docs/openapi.json).\n"
               "Examples:\n"
               "  xover ctl vm-a pause\n"
               "  xover ctl vm-a carrier 0 down\n"
               "  xover ctl broker links\n"
               "The answer's JSON goes to stdout; an error's message to stderr, exit status 1.";
    });
    return [options, ctl]() -> int {
        if (!ctl->parsed()) return -1;
        return run_ctl(*options);
    };
}

}  // namespace xover::cli
