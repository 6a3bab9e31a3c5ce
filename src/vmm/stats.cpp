#include "xover/vmm/stats.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "xover/json.hpp"

namespace xover::vmm {

std::string stats_text(const StatsSnapshot& snapshot, bool all) {
    std::string out;
    for (const StatsGroup& group : snapshot.groups) {
        const bool any = std::any_of(group.counters.begin(), group.counters.end(), [](const auto& c) { return c.second != 0; });
        if (!all && !any && group.facts.empty()) continue;
        out += "stats: " + group.name;
        if (!group.bus.empty()) out += " bus=" + group.bus;
        for (const auto& [key, value] : group.facts)
            std::visit([&, &key = key](const auto& v) { out += fmt::format(" {}={}", key, v); }, value);
        for (const auto& [key, count] : group.counters)
            if (all || count != 0) out += fmt::format(" {}={}", key, count);
        out += '\n';
    }
    return out;
}

Json stats_json(const StatsSnapshot& snapshot) {
    Json line = Json::object();
    line["utc_time_ms"] = snapshot.utc_time_ms;
    for (const StatsGroup& group : snapshot.groups) {
        Json& object = group.bus.empty() ? line[group.name] : line[group.bus][group.name];
        object = Json::object();
        for (const auto& [key, value] : group.facts) std::visit([&, &key = key](const auto& v) { object[key] = v; }, value);
        for (const auto& [key, count] : group.counters) object[key] = count;
    }
    return line;
}

std::string metrics_line(const StatsSnapshot& snapshot) { return json_line(stats_json(snapshot)); }

}  // namespace xover::vmm
