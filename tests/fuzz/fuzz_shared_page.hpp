// A NIC's shared state page and TX handoff (one memfd's worth of bytes,
// kSharedStateSize) for the fuzz targets: zeroed like a new memfd, or
// overwritten with the input's bytes, as a hostile peer could write them.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <new>
#include <span>

#include "xover/nic/shared_nic_state.hpp"

namespace xover::fuzz {

class SharedPage {
public:
    SharedPage() : bytes_(static_cast<std::uint8_t*>(std::aligned_alloc(nic::kStatePageBytes, nic::kSharedStateSize))) {
        std::memset(bytes_, 0, nic::kSharedStateSize);
        state_ = new (bytes_) nic::SharedNicState();
    }
    ~SharedPage() { std::free(bytes_); }
    SharedPage(const SharedPage&) = delete;
    SharedPage& operator=(const SharedPage&) = delete;

    nic::SharedNicState& state() { return *state_; }
    nic::TxHandoff& handoff() { return nic::tx_handoff(*state_); }

    // A page as its owner sets it up (initialize()), with the handoff's
    // control part cleared (the frame slots are left: only records the
    // indices name are ever read).
    void reset(nic::ModelId model) {
        std::memset(bytes_, 0, kControlBytes);
        state_->initialize(static_cast<std::uint32_t>(model));
    }
    // Raw bytes at `offset` of the page and the handoff's control part
    // (what a peer reads its loop bounds and positions from), as a peer
    // with the memfd mapped could write them.
    void overwrite_at(std::size_t offset, std::span<const std::uint8_t> raw) {
        if (offset < kControlBytes) std::memcpy(bytes_ + offset, raw.data(), std::min(raw.size(), kControlBytes - offset));
    }
    static constexpr std::size_t kControlBytes = nic::kStatePageBytes + offsetof(nic::TxHandoff, slots);

private:
    std::uint8_t* bytes_;
    nic::SharedNicState* state_;
};

}  // namespace xover::fuzz
