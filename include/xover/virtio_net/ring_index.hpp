// How the device side reads and writes a split virtqueue's shared indices
// (virtio 1.2, 2.7): the driver runs at the same time in its own guest, so
// each index is one aligned 16-bit access with acquire/release ordering, as
// the driver's own barriers expect. Alignment is checked where a ring is
// taken on (the queue's enable, a window peer's view of it).
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

namespace xover::virtio_net::ring {

static_assert(std::endian::native == std::endian::little, "virtio 1.x rings are little-endian");

inline constexpr std::size_t kHeader = 4;       // flags, idx (avail and used rings alike)
inline constexpr std::size_t kUsedElement = 8;  // id (le32), len (le32)

inline std::uint16_t load16(std::span<std::uint8_t> ring, std::size_t offset) {
    return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(ring.data() + offset))
        .load(std::memory_order_acquire);
}

inline void store16(std::span<std::uint8_t> ring, std::size_t offset, std::uint16_t v) {
    std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(ring.data() + offset))
        .store(v, std::memory_order_release);
}

}  // namespace xover::virtio_net::ring
