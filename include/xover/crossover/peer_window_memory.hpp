// A window peer's guest memory as the peer's RX view sees it: the peer's
// RAM, plus the peer's RX half — which, while the window link is up, is
// our TX element (the same memfd behind our TX half and its RX half). A
// guest that puts its RX buffers in the window therefore gets frames that
// cannot go in place copied there, and the virtio view can walk chains
// whose buffers lie in the window.
#pragma once

#include <cstdint>
#include <span>

#include "xover/vmm/guest_memory.hpp"

namespace xover::crossover {

class PeerWindowMemory final : public vmm::GuestMemory {
public:
    // `ram`: the peer's RAM; [gpa, gpa + size) of the peer is `half`.
    void bind(vmm::GuestMemory& ram, std::uint64_t gpa, std::uint8_t* half, std::uint64_t size) {
        ram_ = &ram;
        gpa_ = gpa;
        half_ = half;
        size_ = size;
    }

    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) override {
        if (len != 0 && gpa >= gpa_ && gpa - gpa_ <= size_ && len <= size_ - (gpa - gpa_))
            return {half_ + (gpa - gpa_), len};
        return ram_ ? ram_->span(gpa, len) : std::span<std::uint8_t>{};
    }

private:
    vmm::GuestMemory* ram_ = nullptr;
    std::uint64_t gpa_ = 0;
    std::uint8_t* half_ = nullptr;
    std::uint64_t size_ = 0;
};

}  // namespace xover::crossover
