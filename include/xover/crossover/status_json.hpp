// The broker's status as JSON (`xover status --json`): nlohmann's JSON,
// with keys kept in the order they are added (ordered_json), so the text is
// stable for scripts that read it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace xover::crossover {

using Json = nlohmann::ordered_json;

// One line, compact; bytes that are not UTF-8 (a tap's name, say) become
// U+FFFD instead of an exception.
inline std::string to_text(const Json& json) {
    return json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace xover::crossover
