// One counter by name from anything with counters() (net and sound
// backends): ~0 when it has no counter of that name.
#pragma once

#include <cstdint>
#include <string>

namespace xover::test {

template <typename WithCounters>
std::uint64_t counter(const WithCounters& source, const std::string& name) {
    for (auto& [key, value] : source.counters())
        if (key == name) return value;
    return ~std::uint64_t(0);
}

}  // namespace xover::test
