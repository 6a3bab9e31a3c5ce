// What a VM name may be, for every place that takes one: the config
// (--name, TOML, crossover peers) and the broker (a registration, a
// peer list). Names reach logs, `xover status` and file names, so they are
// short and plain: letters, digits, '.', '_', '-', starting with a letter
// or digit, at most kMaxVmName characters. "auto" is reserved (crossover =
// "auto").
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string_view>

namespace xover {

inline constexpr std::size_t kMaxVmName = 64;

inline bool valid_vm_name(std::string_view name) {
    auto ok_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; };
    return !name.empty() && name.size() <= kMaxVmName && std::isalnum(static_cast<unsigned char>(name[0])) &&
           std::all_of(name.begin(), name.end(), ok_char) && name != "auto";
}

}  // namespace xover
