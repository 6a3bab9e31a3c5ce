#include "xover/api/api_client.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "xover/error.hpp"

namespace xover::api {

namespace {

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

}  // namespace

ApiResponse api_call(const std::filesystem::path& socket, const std::string& method, const std::string& path,
                     const std::string& body, std::chrono::milliseconds timeout) {
    static std::once_flag global_init;
    std::call_once(global_init, [] { ::curl_global_init(CURL_GLOBAL_NOTHING); });
    std::unique_ptr<CURL, void (*)(CURL*)> curl(::curl_easy_init(), ::curl_easy_cleanup);
    if (!curl) throw Error("API client: libcurl could not start");
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, ::curl_slist_free_all);
    ApiResponse response;
    const std::string url = "http://localhost" + path;
    ::curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
    ::curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    ::curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    ::curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
    ::curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response.body);
    ::curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, long(timeout.count()));
    ::curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    if (!body.empty()) {
        headers.reset(::curl_slist_append(nullptr, "Content-Type: application/json"));
        ::curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
        ::curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
        ::curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, long(body.size()));
    } else if (method == "PUT") {
        ::curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, "");
        ::curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (CURLcode rc = ::curl_easy_perform(curl.get()); rc != CURLE_OK)
        throw Error("no API answers on {}: {}", socket.string(), ::curl_easy_strerror(rc));
    ::curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
    return response;
}

}  // namespace xover::api
