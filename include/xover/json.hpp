// JSON as xover writes it (the broker's status, a VM's metrics lines):
// nlohmann's, with keys kept in the order they are added (ordered_json),
// so the text is stable for scripts that read it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace xover {

using Json = nlohmann::ordered_json;

// One line, compact, ending in '\n'; bytes that are not UTF-8 (a tap's
// name, say) become U+FFFD instead of an exception.
inline std::string json_line(const Json& json) {
    return json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace xover
