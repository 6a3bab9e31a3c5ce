#include "xover/api/api_server.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "xover/unix_listener.hpp"

namespace xover::api {

namespace {

constexpr std::size_t kMaxBody = 64 * 1024;  // the largest request body a handler sees

Json error_body(const std::string& message) { return Json{{"error", message}}; }

void send_json(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    if (body.is_null()) return;
    res.set_content(body.dump(2, ' ', false, Json::error_handler_t::replace) + "\n", "application/json");
}

const char* reason(int status) {
    switch (status) {
    case 400: return "malformed request";
    case 404: return "no such endpoint";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    default: return "request refused";
    }
}

// A PUT, POST, PATCH or DELETE body, read here and not by cpp-httplib: it
// reads a request without Content-Length until the connection closes, so
// a bodiless `curl -X PUT` got a 400 after the read timeout. A request
// with neither Content-Length nor Transfer-Encoding has no body (RFC 9112,
// 6.3). Appended to `body` (nullptr: dropped). False, with the error
// answered, if it could not be read (413: over kMaxBody).
bool read_declared_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                        std::string* body) {
    if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) return true;
    const bool read = reader([body](const char* data, std::size_t n) {
        if (body) body->append(data, n);
        return true;
    });
    if (read) return true;
    const int status = res.status == 413 ? 413 : 400;
    send_json(res, status, error_body(reason(status)));
    return false;
}

}  // namespace

// cpp-httplib 0.11 listens on TCP only; it serves any listening socket
// put in svr_sock_ before listen_after_bind(), which is how it gets ours.
class ApiServer::Server : public httplib::Server {
public:
    bool serve(int listen_fd) {
        svr_sock_ = listen_fd;
        return listen_after_bind();
    }
};

ApiServer::ApiServer(std::filesystem::path path) : path_(std::move(path)), server_(std::make_unique<Server>()) {
    listen_fd_ = listen_unix_stream(path_, "API socket").release();

    // One thread serves; requests are small and answered from memory. Its
    // first task says it runs: start() waits for that, so that the thread
    // has started (clone, rseq, robust list) before a seccomp filter that
    // forbids those is loaded.
    server_->new_task_queue = [this] {
        auto* pool = new httplib::ThreadPool(1);
        pool->enqueue([this] {
            std::lock_guard lock(ready_mutex_);
            ready_ = true;
            ready_cv_.notify_all();
        });
        return pool;
    };
    server_->set_payload_max_length(kMaxBody);
    server_->set_read_timeout(2, 0);
    server_->set_write_timeout(2, 0);
    server_->set_keep_alive_timeout(2);
    server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (res.body.empty()) send_json(res, res.status, error_body(reason(res.status)));
    });
    server_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_json(res, 500, error_body(what));
    });
}

ApiServer::~ApiServer() {
    stop();
    ::unlink(path_.c_str());
}

void ApiServer::route(Method method, const std::string& pattern, ApiHandler handler) {
    auto serve = [handler = std::move(handler)](const httplib::Request& req, const std::string& body,
                                                httplib::Response& res) {
        ApiRequest request;
        for (std::size_t i = 1; i < req.matches.size(); ++i) request.captures.push_back(req.matches[i].str());
        for (const auto& [key, value] : req.params) request.query[key] = value;
        if (!body.empty()) {
            request.body = Json::parse(body, nullptr, false);
            if (request.body.is_discarded()) return send_json(res, 400, error_body("the body is not JSON"));
        }
        try {
            ApiReply reply = handler(request);
            if (!reply.text.empty()) {
                res.status = reply.status;
                res.set_content(reply.text, "text/plain; charset=utf-8");
                return;
            }
            send_json(res, reply.body.is_null() && reply.status == 200 ? 204 : reply.status, reply.body);
        } catch (const ApiError& e) {
            send_json(res, e.status(), error_body(e.what()));
        } catch (const Error& e) {
            send_json(res, 400, error_body(e.what()));
        }
    };
    auto serve_with_reader = [serve](const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& reader) {
        std::string body;
        if (!read_declared_body(req, res, reader, &body)) return;
        serve(req, body, res);
    };
    auto serve_read = [serve](const httplib::Request& req, httplib::Response& res) { serve(req, req.body, res); };
    switch (method) {
    case Method::Get: server_->Get(pattern, std::move(serve_read)); break;
    case Method::Put: server_->Put(pattern, std::move(serve_with_reader)); break;
    case Method::Delete: server_->Delete(pattern, std::move(serve_with_reader)); break;
    }
}

void ApiServer::set_worker_setup(std::function<bool()> setup) {
    worker_setup_ = std::move(setup);
    server_->set_pre_routing_handler([this](const httplib::Request&, httplib::Response&) {
        if (!worker_set_up_) worker_set_up_ = worker_setup_();
        return httplib::Server::HandlerResponse::Unhandled;
    });
}

void ApiServer::start() {
    if (thread_.joinable()) return;
    // Last, after every route: a method with a body to an unknown path is
    // answered 404 at once, without waiting for a body that may not come
    // (see route()).
    auto unknown = [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        // A body is read and dropped here, not left to cpp-httplib: the
        // next request on a kept-alive connection starts after it.
        if (read_declared_body(req, res, reader, nullptr)) send_json(res, 404, error_body(reason(404)));
    };
    server_->Put(".*", unknown);
    server_->Post(".*", unknown);
    server_->Patch(".*", unknown);
    server_->Delete(".*", unknown);
    // The API's threads take no signals: a SIGTERM meant for the VM's
    // signalfd, or a vCPU kick, must never land on them. Its worker
    // threads are started by this one and inherit the mask.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] {
        if (!server_->serve(listen_fd_)) spdlog::warn("API socket {}: stopped serving", path_.string());
    });
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // Its worker runs (see the constructor), and httplib's stop() works
    // once the server runs: a stop() right after start() is never lost.
    std::unique_lock lock(ready_mutex_);
    if (!ready_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return ready_; }))
        throw Error("API socket {}: the server thread did not start", path_.string());
    lock.unlock();
    for (int i = 0; i < 2000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void ApiServer::stop() {
    if (!thread_.joinable()) {
        if (listen_fd_ >= 0) ::close(listen_fd_);
        listen_fd_ = -1;
        return;
    }
    server_->stop();  // shuts the listening socket down and closes it
    thread_.join();
    listen_fd_ = -1;
}

std::filesystem::path vm_api_socket(const std::filesystem::path& broker_socket, const std::string& name) {
    return broker_socket.parent_path() / ("vm." + name + ".api.sock");
}

std::filesystem::path broker_api_socket(const std::filesystem::path& broker_socket) {
    return broker_socket.parent_path() / "broker.api.sock";
}

}  // namespace xover::api
