// An Ethernet MAC address, parsed from and printed as 52:54:00:12:34:56.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xover::net {

struct MacAddress {
    std::array<std::uint8_t, 6> bytes{};

    static std::optional<MacAddress> parse(std::string_view text);
    std::string to_string() const;
    bool is_multicast() const { return bytes[0] & 1; }  // broadcast included
    bool is_broadcast() const { return bytes == std::array<std::uint8_t, 6>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; }
    auto operator<=>(const MacAddress&) const = default;
};

}  // namespace xover::net
