// A vector-backed GuestMemory for unit tests: guest-physical address 0 is
// bytes[0], and anything past bytes.size() is "outside RAM" (empty span),
// exactly like the real memory's bounds check. Tests may poke `bytes`
// directly to build rings, descriptors or boot images.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "xover/vmm/guest_memory.hpp"

namespace xover::test {

struct FakeGuestMemory : xover::vmm::GuestMemory {
    explicit FakeGuestMemory(std::size_t size) : bytes(size, 0) {}

    std::vector<std::uint8_t> bytes;

    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) override {
        if (len == 0 || gpa > bytes.size() || len > bytes.size() - gpa) return {};
        return {bytes.data() + gpa, static_cast<std::size_t>(len)};
    }

    // Test helpers: copy raw bytes in/out at a guest-physical address
    // (no bounds forgiveness: a test that writes outside is a test bug).
    void poke(std::uint64_t gpa, const void* data, std::size_t len) {
        std::memcpy(bytes.data() + gpa, data, len);
    }
    void peek(std::uint64_t gpa, void* out, std::size_t len) const {
        std::memcpy(out, bytes.data() + gpa, len);
    }
    template <typename T>
    T at(std::uint64_t gpa) const {
        T value;
        peek(gpa, &value, sizeof(T));
        return value;
    }
};

}  // namespace xover::test

// Convenience alias so tests can write either xover::test::FakeGuestMemory
// or plain FakeGuestMemory.
using xover::test::FakeGuestMemory;
