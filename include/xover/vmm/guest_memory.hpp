// The only way device models touch guest RAM: a bounds-checked translation
// from a guest-physical range to a host span. A range that is not entirely
// inside one RAM region translates to an empty span, so a hostile guest
// address can never make the VMM read or write outside guest memory.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

namespace xover::vmm {

// Guest RAM as one file another process can map: the memfd and its size,
// laid out as crossover/client.hpp says (what a crossover peer maps).
struct RamFile {
    int fd = -1;
    std::uint64_t size = 0;
};

class GuestMemory {
public:
    virtual ~GuestMemory() = default;

    // Host view of [gpa, gpa + len); empty if any byte is outside RAM
    // (or len is 0, or gpa + len overflows).
    virtual std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) = 0;

    // The RAM file a crossover peer maps, if this memory is one.
    virtual std::optional<RamFile> ram_file() const { return std::nullopt; }

    template <typename T>
    bool read(std::uint64_t gpa, T& out) {
        static_assert(std::is_trivially_copyable_v<T>);
        auto s = span(gpa, sizeof(T));
        if (s.empty()) return false;
        std::memcpy(&out, s.data(), sizeof(T));
        return true;
    }

    template <typename T>
    bool write(std::uint64_t gpa, const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        auto s = span(gpa, sizeof(T));
        if (s.empty()) return false;
        std::memcpy(s.data(), &value, sizeof(T));
        return true;
    }
};

}  // namespace xover::vmm
