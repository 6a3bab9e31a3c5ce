// parse_size: "64M", "1G", "512K", "4096" -> bytes (binary units).
#include <cctype>
#include <charconv>

#include "config_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm {

std::uint64_t parse_size(std::string_view text) {
    auto bad = [&]() -> Error {
        return Error("{} is not a size (use 64M, 1G)", config_detail::quote_value(text));
    };
    std::uint64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc{} || end == text.data()) throw bad();

    std::string suffix;
    for (const char* p = end; p != text.data() + text.size(); ++p) suffix += char(std::toupper(*p));
    // Accept K, KB, KiB (all binary): the B / iB adds nothing.
    if (suffix.size() == 3 && suffix.substr(1) == "IB") suffix.resize(1);
    if (suffix.size() == 2 && suffix[1] == 'B') suffix.resize(1);
    unsigned shift = 0;
    if (suffix.empty() || suffix == "B") shift = 0;
    else if (suffix == "K") shift = 10;
    else if (suffix == "M") shift = 20;
    else if (suffix == "G") shift = 30;
    else if (suffix == "T") shift = 40;
    else throw bad();
    if (shift > 0 && number > (~std::uint64_t{0} >> shift)) throw Error("{} is too large", config_detail::quote_value(text));
    return number << shift;
}

}  // namespace xover::vmm
