// The comma-separated "[MODEL,]key=value,..." specs of --nic and --sound:
// one splitter, with the messages both flags give.
#include <fmt/format.h>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm::config_detail {

void for_each_spec_item(
    std::string_view spec, const std::string& where, std::string_view keys,
    const std::function<void(const std::string& model)>& model,
    const std::function<bool(const std::string& key, const std::string& value, std::string_view item,
                             const std::string& origin)>& key_value,
    const std::function<bool(std::string_view item)>& bare) {
    bool first = true;
    std::size_t start = 0;
    while (start <= spec.size()) {
        std::size_t end = spec.find(',', start);
        if (end == std::string_view::npos) end = spec.size();
        const std::string_view item = spec.substr(start, end - start);
        start = end + 1;

        const auto eq = item.find('=');
        if (eq == std::string_view::npos) {
            // Only the first item may be a bare model name ("e1000,mac=...").
            if (first && !item.empty()) {
                model(std::string(item));
                first = false;
                continue;
            }
            if (bare && bare(item)) continue;
            throw Error("{}: {} is not key=value (keys: {})", where, quote_value(item), keys);
        }
        first = false;
        const std::string key(item.substr(0, eq));
        const std::string value(item.substr(eq + 1));
        if (!key_value(key, value, item, fmt::format("{}: {}", where, key)))
            throw Error("{}: unknown key {} (keys: {})", where, quote_value(key), keys);
    }
}

}  // namespace xover::vmm::config_detail
