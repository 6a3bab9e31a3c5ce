// The only way device models touch guest RAM: a bounds-checked translation
// from a guest-physical range to a host span. A range that is not entirely
// inside one RAM region translates to an empty span, so a hostile guest
// address can never make the VMM read or write outside guest memory.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace xover::vmm {

class GuestMemory {
public:
    virtual ~GuestMemory() = default;

    // Host view of [gpa, gpa + len); empty if any byte is outside RAM
    // (or len is 0, or gpa + len overflows).
    virtual std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) = 0;

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
