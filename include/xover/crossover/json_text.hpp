// Text inside a JSON string literal, for the broker's status reports.
#pragma once

#include <string>
#include <string_view>

namespace xover::crossover {

// Escapes quotes, backslashes and control characters.
std::string json_escape(std::string_view s);

}  // namespace xover::crossover
