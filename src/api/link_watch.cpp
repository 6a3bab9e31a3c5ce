#include "xover/api/link_watch.hpp"

#include <fmt/format.h>

#include "xover/api/api_client.hpp"
#include "xover/api/api_server.hpp"
#include "xover/error.hpp"

namespace xover::api {

void LinkWatch::poll(std::chrono::milliseconds timeout) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_) return;
    next_ = now + std::chrono::seconds(1);
    for (const auto& broker : brokers_) {
        try {
            ApiResponse r = api_call(broker_api_socket(broker), "GET", "/links", {}, timeout);
            if (r.status != 200) continue;
            Json links = Json::parse(r.body, nullptr, false);
            if (!links.is_array()) continue;
            for (auto& link : links) {
                if (!link.is_object() || !link.contains("id") || !link["id"].is_number_unsigned()) continue;
                auto [it, fresh] = links_.try_emplace({broker.string(), link["id"].get<std::uint64_t>()});
                if (fresh) it->second.first = now;
                it->second.last = now;
                it->second.link = std::move(link);
            }
        } catch (const Error&) {
            // Not up yet, or gone already: only this sample is lost.
        }
    }
}

std::vector<std::string> LinkWatch::summary() const {
    std::vector<std::string> out;
    for (const auto& [key, seen] : links_) {
        const Json& l = seen.link;
        const double seconds = std::chrono::duration<double>(seen.last - seen.first).count();
        auto end = [](const Json& e) {
            return fmt::format("{}#{}", e.value("vm", std::string("?")), e.value("nic", 0u));
        };
        auto direction = [&](const char* name) {
            const Json& d = l.contains(name) ? l[name] : Json::object();
            const std::uint64_t frames = d.value("frames", std::uint64_t(0));
            std::string rate = seconds >= 1 ? fmt::format(", ~{:.0f} frames/s", double(frames) / seconds) : "";
            return fmt::format("{} frames, {} bytes, {} dropped{}", frames, d.value("bytes", std::uint64_t(0)),
                               d.value("dropped", std::uint64_t(0)), rate);
        };
        const Json& a = l.contains("a") ? l["a"] : Json::object();
        const Json& b = l.contains("b") ? l["b"] : Json::object();
        out.push_back(fmt::format("link {} {} <-> {} ({}, {}): {} -> {}: {}; {} -> {}: {}", key.second, end(a),
                                  end(b), l.value("mode", std::string("?")), l.value("wiring", std::string("?")),
                                  end(a), end(b), direction("a_to_b"), end(b), end(a), direction("b_to_a")));
    }
    return out;
}

}  // namespace xover::api
