// Test-side driver half of a split virtqueue in FakeGuestMemory: builds
// descriptor chains (direct or indirect), makes them available, and reads
// back the used ring. A test builds a chain in three lines:
//
//   VirtqueueBuilder vq(mem, 0x10000, 8);
//   auto head = vq.add({vq.readable("hello"), vq.writable(64)});
//   ... device works ... ; CHECK(vq.used(0).len == 64);
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "fake_guest_memory.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/virtio_net/virtqueue.hpp"

namespace xover::test {

class VirtqueueBuilder {
public:
    struct Buf {
        std::uint64_t addr;
        std::uint32_t len;
        bool writable;
    };
    struct Used {
        std::uint32_t id;
        std::uint32_t len;
    };

    // Rings at `base` (desc, then avail, then used on the next 4 KiB
    // boundary); buffers are carved from `data` upwards.
    VirtqueueBuilder(FakeGuestMemory& mem, std::uint64_t base, std::uint16_t size, std::uint64_t data = 0)
        : mem_(mem), size_(size) {
        layout_.size = size;
        layout_.desc = base;
        layout_.avail = base + 16ull * size;
        layout_.used = (layout_.avail + 6 + 2ull * size + 4095) & ~4095ull;
        data_ = data ? data : layout_.used + ((4 + 8ull * size + 2 + 4095) & ~4095ull);
    }

    const virtio_net::VirtqueueLayout& layout() const { return layout_; }
    std::uint16_t size() const { return size_; }

    // --- buffers ---
    std::uint64_t alloc(std::size_t len) {
        std::uint64_t at = data_;
        data_ += (len + 15) & ~std::size_t(15);
        return at;
    }
    Buf readable(std::span<const std::uint8_t> bytes) {
        std::uint64_t at = alloc(bytes.size());
        if (!bytes.empty()) mem_.poke(at, bytes.data(), bytes.size());
        return {at, std::uint32_t(bytes.size()), false};
    }
    Buf readable(std::string_view text) {
        return readable(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }
    Buf writable(std::uint32_t len) { return {alloc(len), len, true}; }

    // --- descriptors ---
    void write_desc(std::uint16_t index, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
                    std::uint16_t next) {
        write_desc_at(layout_.desc + 16ull * index, addr, len, flags, next);
    }
    void write_desc_at(std::uint64_t gpa, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
                       std::uint16_t next) {
        mem_.poke(gpa, &addr, 8);
        mem_.poke(gpa + 8, &len, 4);
        mem_.poke(gpa + 12, &flags, 2);
        mem_.poke(gpa + 14, &next, 2);
    }
    // Writes a chain into free descriptor slots; returns its head.
    std::uint16_t chain(std::span<const Buf> bufs) {
        std::uint16_t head = next_free_;
        for (std::size_t i = 0; i < bufs.size(); ++i) {
            std::uint16_t index = next_free_;
            next_free_ = std::uint16_t((next_free_ + 1) % size_);
            bool last = i + 1 == bufs.size();
            std::uint16_t flags = std::uint16_t((bufs[i].writable ? virtio_net::spec::kDescWrite : 0) |
                                                (last ? 0 : virtio_net::spec::kDescNext));
            write_desc(index, bufs[i].addr, bufs[i].len, flags, last ? 0 : next_free_);
        }
        return head;
    }
    // One ring descriptor pointing at an indirect table holding `bufs`.
    std::uint16_t indirect_chain(std::span<const Buf> bufs) {
        std::uint64_t table = alloc(16 * bufs.size());
        for (std::size_t i = 0; i < bufs.size(); ++i) {
            bool last = i + 1 == bufs.size();
            std::uint16_t flags = std::uint16_t((bufs[i].writable ? virtio_net::spec::kDescWrite : 0) |
                                                (last ? 0 : virtio_net::spec::kDescNext));
            write_desc_at(table + 16 * i, bufs[i].addr, bufs[i].len, flags, std::uint16_t(last ? 0 : i + 1));
        }
        std::uint16_t head = next_free_;
        next_free_ = std::uint16_t((next_free_ + 1) % size_);
        write_desc(head, table, std::uint32_t(16 * bufs.size()), virtio_net::spec::kDescIndirect, 0);
        return head;
    }

    // --- avail ring ---
    void publish(std::uint16_t head) {
        std::uint16_t slot = avail_idx_ % size_;
        mem_.poke(layout_.avail + 4 + 2ull * slot, &head, 2);
        ++avail_idx_;
        set_avail_idx(avail_idx_);
    }
    std::uint16_t add(std::initializer_list<Buf> bufs) {
        std::uint16_t head = chain(std::span(bufs.begin(), bufs.size()));
        publish(head);
        return head;
    }
    std::uint16_t add_indirect(std::initializer_list<Buf> bufs) {
        std::uint16_t head = indirect_chain(std::span(bufs.begin(), bufs.size()));
        publish(head);
        return head;
    }
    void set_avail_idx(std::uint16_t idx) {
        avail_idx_ = idx;
        mem_.poke(layout_.avail + 2, &idx, 2);
    }
    std::uint16_t avail_idx() const { return avail_idx_; }
    void set_avail_flags(std::uint16_t flags) { mem_.poke(layout_.avail, &flags, 2); }
    void set_used_event(std::uint16_t v) { mem_.poke(layout_.avail + 4 + 2ull * size_, &v, 2); }
    // Starts the driver's indices somewhere else (e.g. near 16-bit wrap);
    // the device must be told the same (see Virtqueue tests).
    void set_next_free(std::uint16_t index) { next_free_ = index; }

    // --- used ring ---
    std::uint16_t used_idx() const { return mem_.at<std::uint16_t>(layout_.used + 2); }
    std::uint16_t used_flags() const { return mem_.at<std::uint16_t>(layout_.used); }
    std::uint16_t avail_event() const { return mem_.at<std::uint16_t>(layout_.used + 4 + 8ull * size_); }
    // The n-th used element ever written (n counts from 0, modulo size).
    Used used(std::uint16_t n) const {
        std::uint64_t at = layout_.used + 4 + 8ull * (n % size_);
        return {mem_.at<std::uint32_t>(at), mem_.at<std::uint32_t>(at + 4)};
    }

    std::vector<std::uint8_t> bytes(const Buf& b, std::size_t len) const {
        std::vector<std::uint8_t> out(len);
        if (len) mem_.peek(b.addr, out.data(), len);
        return out;
    }

private:
    FakeGuestMemory& mem_;
    std::uint16_t size_;
    virtio_net::VirtqueueLayout layout_{};
    std::uint64_t data_ = 0;
    std::uint16_t next_free_ = 0;
    std::uint16_t avail_idx_ = 0;
};

}  // namespace xover::test
