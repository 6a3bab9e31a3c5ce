// The KVM structures that end in a flexible array (kvm_cpuid2, kvm_msrs,
// kvm_irq_routing) are declared with __DECLARE_FLEX_ARRAY, which in C++
// wraps the array in a struct with an empty member of size 1: sizeof and
// the offset of `entries` differ from the kernel's C layout (kvm_cpuid2
// entries at 12 instead of 8; kvm_msrs and kvm_irq_routing at 16 instead
// of 8), and so do the ioctl numbers, which encode the size. So xover
// builds these tables itself: an 8-byte header, entries right after, and
// ioctl numbers computed with the 8-byte C size.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace xover::kvm::abi {

struct Header {  // nent/nmsrs/nr + padding/pad/flags: the C struct's fixed part
    std::uint32_t count;
    std::uint32_t second;
};
static_assert(sizeof(Header) == 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Header);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, Header);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, Header);

// A header followed by `count` entries of T, 8-byte aligned.
template <typename T>
class Table {
public:
    explicit Table(std::uint32_t count, std::uint32_t second = 0)
        : words_((sizeof(Header) + count * sizeof(T) + 7) / 8, 0) {
        Header h{count, second};
        std::memcpy(words_.data(), &h, sizeof h);
    }
    void* data() { return words_.data(); }
    std::uint32_t count() const {
        Header h;
        std::memcpy(&h, words_.data(), sizeof h);
        return h.count;
    }
    T get(std::size_t i) const {
        T out;
        std::memcpy(&out, bytes() + sizeof(Header) + i * sizeof(T), sizeof(T));
        return out;
    }
    void set(std::size_t i, const T& value) {
        std::memcpy(bytes() + sizeof(Header) + i * sizeof(T), &value, sizeof(T));
    }

private:
    const std::uint8_t* bytes() const { return reinterpret_cast<const std::uint8_t*>(words_.data()); }
    std::uint8_t* bytes() { return reinterpret_cast<std::uint8_t*>(words_.data()); }
    std::vector<std::uint64_t> words_;
};

}  // namespace xover::kvm::abi
