// The control API: HTTP/1.1 with JSON bodies on a Unix socket, so that
// `curl --unix-socket PATH http://localhost/vm` works. One per VM (`xover
// run --api-socket`) and one per broker; see docs/openapi.json.
//
// cpp-httplib parses and answers the requests, on two threads of its own:
// one accepts, one serves (a second connection waits for the first). A
// handler gets the path's captures and the parsed JSON body and returns a
// JSON reply, or throws ApiError (a status and a message). Every error,
// including cpp-httplib's own (a malformed request, an unknown path), is
// answered as {"error": "message"}: a bad request never reaches the VM.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "xover/error.hpp"
#include "xover/json.hpp"

namespace xover::api {

using xover::Json;

struct ApiRequest {
    std::vector<std::string> captures;         // the path pattern's groups, in order
    std::map<std::string, std::string> query;  // ?key=value (the last value of a repeated key)
    Json body;                                 // null when the request has none
};

struct ApiReply {
    int status = 200;
    Json body;         // null (and no text): 204 No Content
    std::string text;  // set instead of body: a text/plain reply

    ApiReply() = default;
    ApiReply(int status, Json body) : status(status), body(std::move(body)) {}
    static ApiReply plain_text(std::string text) {
        ApiReply reply;
        reply.text = std::move(text);
        return reply;
    }
};

// What a handler throws for a request it refuses: 400 (bad value), 404 (no
// such thing), 409 (not now: the VM is not in a state that allows it).
class ApiError : public Error {
public:
    template <typename... Args>
    ApiError(int status, fmt::format_string<Args...> format, Args&&... args)
        : Error(format, std::forward<Args>(args)...), status_(status) {}
    int status() const { return status_; }

private:
    int status_;
};

using ApiHandler = std::function<ApiReply(const ApiRequest&)>;

class ApiServer {
public:
    enum class Method { Get, Put, Delete };

    // Listens on `path`, mode 0600: its directory must exist. A stale
    // socket there (nobody listening) is replaced; a live one is an error.
    explicit ApiServer(std::filesystem::path path);
    ~ApiServer();  // stop(), and the socket file goes
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // `pattern` is a regular expression over the whole path, e.g.
    // "/links/([^/]+)"; its groups become ApiRequest::captures.
    void route(Method method, const std::string& pattern, ApiHandler handler);
    // Runs on the request-handling thread before each request until it
    // returns true: that thread's own set-up that must wait for something
    // (its seccomp filter waits for the process's). Call before start().
    void set_worker_setup(std::function<bool()> setup);
    // Serves on a thread of its own until stop(). Call after every route().
    void start();
    void stop();

    const std::filesystem::path& path() const { return path_; }

private:
    class Server;
    std::filesystem::path path_;
    std::unique_ptr<Server> server_;
    int listen_fd_ = -1;  // the server closes it when it stops
    std::thread thread_;
    std::mutex ready_mutex_;  // the worker thread runs: ready_
    std::condition_variable ready_cv_;
    bool ready_ = false;
    std::function<bool()> worker_setup_;
    bool worker_set_up_ = false;  // only its one worker thread reads and writes it
};

// The API socket of VM `name` next to the broker socket `broker_socket`
// (vm.NAME.api.sock), and the broker's own (broker.api.sock).
std::filesystem::path vm_api_socket(const std::filesystem::path& broker_socket, const std::string& name);
std::filesystem::path broker_api_socket(const std::filesystem::path& broker_socket);

}  // namespace xover::api
