// A client of the control API (api_server.hpp), for `xover ctl` and the
// tests: one request per call over the Unix socket, through libcurl.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace xover::api {

struct ApiResponse {
    long status = 0;
    std::string body;  // as sent: JSON, or empty (204)
};

// Sends METHOD PATH (with `body` as JSON when not empty) to the API on
// `socket` and returns the status and body. Throws xover::Error when
// nothing answers there, with the reason (no such socket, refused).
// Gives up after `timeout`.
ApiResponse api_call(const std::filesystem::path& socket, const std::string& method, const std::string& path,
                     const std::string& body = {}, std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace xover::api
