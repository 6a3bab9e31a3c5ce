// Test scaffolding for the e1000 model: a rig (fake guest memory, IRQ line,
// backend and the NIC with bus mastering on), TX/RX ring builders that lay
// descriptors and buffers out in fake guest memory, and packet builders.
// A test is then three lines: build a ring, add descriptors, kick.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "counters.hpp"
#include "fake_guest_memory.hpp"
#include "fake_net.hpp"
#include "xover/e1000/e1000.hpp"

namespace xover::test {

using Bytes = std::vector<std::uint8_t>;

inline const net::MacAddress kNicMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
inline const net::MacAddress kPeerMac{{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}};

// A fake clock and one-shot timer for ITR and the interrupt delay timers.
struct FakeTimer {
    std::uint64_t now = 1'000'000;
    std::uint64_t armed = 0;  // last deadline asked for (0: none)
    unsigned arms = 0;
};

struct E1000Rig {
    // `mac`: what the EEPROM holds (the NIC loads it into RAL0/RAH0).
    explicit E1000Rig(std::size_t memory_size = 4 << 20, const net::MacAddress& mac = kNicMac)
        : memory(memory_size), nic{memory, irq, backend, mac, "e1000-test"} {
        std::uint8_t command[2] = {0x07, 0x00};  // I/O, memory, bus master
        nic.config_write(0x04, command);
    }
    std::uint32_t rd(std::uint32_t offset) { return nic.read_register(offset); }
    void wr(std::uint32_t offset, std::uint32_t value) { nic.write_register(offset, value); }
    void use_fake_timer() {
        nic.set_interrupt_timer({[this] { return timer.now; },
                                 [this](std::uint64_t deadline) {
                                     timer.armed = deadline;
                                     ++timer.arms;
                                 }});
    }
    // Advances the fake clock and fires the timer if its deadline passed.
    void advance_ns(std::uint64_t ns) {
        timer.now += ns;
        if (timer.armed != 0 && timer.armed <= timer.now) {
            timer.armed = 0;
            nic.on_timer();
        }
    }
    std::uint64_t counter(const std::string& name) const { return xover::test::counter(nic, name); }

    FakeGuestMemory memory;
    FakeIrqLine irq;
    FakeBackend backend;
    FakeTimer timer;
    e1000::E1000 nic;
};

inline void put_le16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = std::uint8_t(v);
    b[at + 1] = std::uint8_t(v >> 8);
}
inline void put_le32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = std::uint8_t(v >> (8 * i));
}
inline void put_le64(Bytes& b, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b[at + i] = std::uint8_t(v >> (8 * i));
}

// Transmit ring at `base` with `count` descriptors; data buffers are carved
// from `buffers` upwards. The constructor programs the ring and TCTL.EN.
class TxRing {
public:
    TxRing(E1000Rig& rig, std::uint32_t count = 16, std::uint64_t base = 0x10000, std::uint64_t buffers = 0x40000)
        : rig_(rig), count_(count), base_(base), next_buffer_(buffers) {
        rig_.wr(e1000::reg::TDBAL, std::uint32_t(base));
        rig_.wr(e1000::reg::TDBAH, std::uint32_t(base >> 32));
        rig_.wr(e1000::reg::TDLEN, count * 16);
        rig_.wr(e1000::reg::TDH, 0);
        rig_.wr(e1000::reg::TDT, 0);
        rig_.wr(e1000::reg::TCTL, e1000::tctl::EN);
    }

    // Legacy descriptor carrying `data`; returns its index.
    std::uint32_t legacy(const Bytes& data, std::uint8_t cmd = e1000::txd::CMD_EOP | e1000::txd::CMD_RS,
                         std::uint8_t cso = 0, std::uint8_t css = 0, std::uint16_t special = 0) {
        Bytes d(16, 0);
        put_le64(d, 0, place(data));
        put_le16(d, 8, std::uint16_t(data.size()));
        d[10] = cso;
        d[11] = cmd;
        d[13] = css;
        put_le16(d, 14, special);
        return put(d);
    }
    // Raw legacy descriptor with any address and length (hostile tests).
    std::uint32_t legacy_raw(std::uint64_t address, std::uint16_t length,
                             std::uint8_t cmd = e1000::txd::CMD_EOP | e1000::txd::CMD_RS) {
        Bytes d(16, 0);
        put_le64(d, 0, address);
        put_le16(d, 8, length);
        d[11] = cmd;
        return put(d);
    }
    struct Context {
        std::uint8_t ipcss = 14, ipcso = 24;
        std::uint16_t ipcse = 33;
        std::uint8_t tucss = 34, tucso = 50;
        std::uint16_t tucse = 0;
        std::uint8_t tucmd = e1000::txd::TUCMD_IP | e1000::txd::TUCMD_TCP;
        std::uint32_t paylen = 0;
        std::uint8_t hdrlen = 54;
        std::uint16_t mss = 0;
    };
    std::uint32_t context(const Context& c, std::uint8_t extra_cmd = 0) {
        Bytes d(16, 0);
        d[0] = c.ipcss;
        d[1] = c.ipcso;
        put_le16(d, 2, c.ipcse);
        d[4] = c.tucss;
        d[5] = c.tucso;
        put_le16(d, 6, c.tucse);
        put_le32(d, 8, (c.paylen & 0xFFFFF) | std::uint32_t(e1000::txd::DTYP_CONTEXT) << 20 |
                           std::uint32_t(c.tucmd | e1000::txd::CMD_DEXT | extra_cmd) << 24);
        d[13] = c.hdrlen;
        put_le16(d, 14, c.mss);
        return put(d);
    }
    std::uint32_t data(const Bytes& bytes, std::uint8_t dcmd, std::uint8_t popts = 0, std::uint16_t special = 0) {
        Bytes d(16, 0);
        put_le64(d, 0, place(bytes));
        put_le32(d, 8, std::uint32_t(bytes.size() & 0xFFFFF) | std::uint32_t(e1000::txd::DTYP_DATA) << 20 |
                           std::uint32_t(dcmd | e1000::txd::CMD_DEXT) << 24);
        d[13] = popts;
        put_le16(d, 14, special);
        return put(d);
    }
    // Makes every descriptor added so far visible: TDT = next free slot.
    void kick() { rig_.wr(e1000::reg::TDT, next_); }
    std::uint8_t status(std::uint32_t index) const { return rig_.memory.bytes[base_ + 16 * index + 12]; }
    std::uint32_t next() const { return next_; }

private:
    std::uint64_t place(const Bytes& data) {
        std::uint64_t at = next_buffer_;
        if (!data.empty()) rig_.memory.poke(at, data.data(), data.size());
        next_buffer_ += (data.size() + 0xFF) & ~std::uint64_t(0xFF);
        if (data.empty()) next_buffer_ += 0x100;
        return at;
    }
    std::uint32_t put(const Bytes& d) {
        std::uint32_t index = next_;
        rig_.memory.poke(base_ + 16 * index, d.data(), 16);
        next_ = (next_ + 1) % count_;
        return index;
    }

    E1000Rig& rig_;
    std::uint32_t count_;
    std::uint64_t base_;
    std::uint64_t next_buffer_;
    std::uint32_t next_ = 0;
};

// Receive ring with `count` descriptors of `buffer_size`-byte buffers; all
// but one are handed to the NIC (RDT = count - 1). RCTL gets EN plus `rctl`.
class RxRing {
public:
    RxRing(E1000Rig& rig, std::uint32_t count = 8, std::uint32_t rctl = e1000::rctl::BAM | e1000::rctl::SECRC,
           std::uint32_t buffer_size = 2048, std::uint64_t base = 0x20000, std::uint64_t buffers = 0x100000)
        : rig_(rig), count_(count), base_(base), buffers_(buffers), buffer_size_(buffer_size) {
        for (std::uint32_t i = 0; i < count; ++i) {
            Bytes d(16, 0);
            put_le64(d, 0, buffers + std::uint64_t(i) * buffer_size);
            rig_.memory.poke(base + 16 * i, d.data(), 16);
        }
        std::uint32_t bsize = buffer_size == 2048 ? 0 : buffer_size == 1024 ? 1 : buffer_size == 512 ? 2 : 3;
        rig_.wr(e1000::reg::RDBAL, std::uint32_t(base));
        rig_.wr(e1000::reg::RDBAH, std::uint32_t(base >> 32));
        rig_.wr(e1000::reg::RDLEN, count * 16);
        rig_.wr(e1000::reg::RDH, 0);
        rig_.wr(e1000::reg::RDT, count - 1);
        rig_.wr(e1000::reg::RCTL, e1000::rctl::EN | rctl | bsize << e1000::rctl::BSIZE_SHIFT);
    }
    std::uint16_t length(std::uint32_t i) const { return rig_.memory.at<std::uint16_t>(base_ + 16 * i + 8); }
    std::uint8_t status(std::uint32_t i) const { return rig_.memory.bytes[base_ + 16 * i + 12]; }
    std::uint8_t errors(std::uint32_t i) const { return rig_.memory.bytes[base_ + 16 * i + 13]; }
    std::uint16_t special(std::uint32_t i) const { return rig_.memory.at<std::uint16_t>(base_ + 16 * i + 14); }
    Bytes buffer(std::uint32_t i) const {
        Bytes out(length(i));
        rig_.memory.peek(buffers_ + std::uint64_t(i) * buffer_size_, out.data(), out.size());
        return out;
    }
    // Reassembles the frame that starts at descriptor `first` (up to EOP;
    // at most one lap, so a ring without EOP fails the test, not hangs it).
    Bytes frame(std::uint32_t first) const {
        Bytes out;
        for (std::uint32_t n = 0, i = first; n < count_; ++n, i = (i + 1) % count_) {
            Bytes part = buffer(i);
            out.insert(out.end(), part.begin(), part.end());
            if (status(i) & e1000::rxd::STA_EOP) break;
        }
        return out;
    }
    void clear_status(std::uint32_t i) { rig_.memory.bytes[base_ + 16 * i + 12] = 0; }
    void set_tail(std::uint32_t tail) { rig_.wr(e1000::reg::RDT, tail); }

private:
    E1000Rig& rig_;
    std::uint32_t count_;
    std::uint64_t base_;
    std::uint64_t buffers_;
    std::uint32_t buffer_size_;
};

// --- packets ---------------------------------------------------------------

inline Bytes ethernet(const net::MacAddress& dst, const net::MacAddress& src, std::uint16_t type,
                      std::size_t payload, std::uint8_t fill = 0xA5) {
    Bytes f(14 + payload, fill);
    std::copy(dst.bytes.begin(), dst.bytes.end(), f.begin());
    std::copy(src.bytes.begin(), src.bytes.end(), f.begin() + 6);
    f[12] = std::uint8_t(type >> 8);
    f[13] = std::uint8_t(type);
    for (std::size_t i = 0; i < payload; ++i) f[14 + i] = std::uint8_t(fill + i);
    return f;
}

inline std::uint16_t be16(const Bytes& b, std::size_t at) { return std::uint16_t(b[at] << 8 | b[at + 1]); }
inline std::uint32_t be32(const Bytes& b, std::size_t at) {
    return std::uint32_t(b[at]) << 24 | std::uint32_t(b[at + 1]) << 16 | std::uint32_t(b[at + 2]) << 8 | b[at + 3];
}
inline void put_be16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = std::uint8_t(v >> 8);
    b[at + 1] = std::uint8_t(v);
}
inline void put_be32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = std::uint8_t(v >> (24 - 8 * i));
}

// Reference ones' complement sum (independent of the model's).
inline std::uint32_t ref_sum(const Bytes& b, std::size_t from, std::size_t to, std::uint32_t sum = 0) {
    for (std::size_t i = from; i < to; i += 2) sum += std::uint32_t(b[i] << 8 | (i + 1 < to ? b[i + 1] : 0));
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return sum;
}
// True when the IPv4 header checksum at offset 14 verifies.
inline bool ipv4_header_ok(const Bytes& f) {
    std::size_t ihl = (f[14] & 0xF) * 4;
    return ref_sum(f, 14, 14 + ihl) == 0xFFFF;
}
// True when the TCP/UDP checksum over the IPv4 pseudo-header verifies.
inline bool l4_ok(const Bytes& f) {
    std::size_t ihl = (f[14] & 0xF) * 4;
    std::size_t l4 = 14 + ihl;
    std::size_t l4_len = be16(f, 16) - ihl;
    std::uint32_t pseudo = ref_sum(f, 26, 34, f[23] + std::uint32_t(l4_len));
    return ref_sum(f, l4, l4 + l4_len, pseudo) == 0xFFFF;
}

// An Ethernet + IPv4 (20 bytes) + TCP (20 bytes) frame, headers filled in,
// IP checksum 0. `seed_pseudo` stores the pseudo-header sum in the TCP
// checksum field, as a driver does for checksum offload; `with_length`
// includes the TCP length in it (plain offload) or not (TSO).
inline Bytes tcp_frame(std::size_t payload, bool seed_pseudo = true, bool with_length = true,
                       std::uint8_t flags = 0x18 /* PSH|ACK */) {
    Bytes f = ethernet(kPeerMac, kNicMac, 0x0800, 40 + payload);
    f[14] = 0x45;
    f[15] = 0;
    put_be16(f, 16, std::uint16_t(40 + payload));
    put_be16(f, 18, 0x1234);  // IP ID
    put_be16(f, 20, 0x4000);  // DF
    f[22] = 64;
    f[23] = 6;
    put_be16(f, 24, 0);
    put_be32(f, 26, 0x0A000001);
    put_be32(f, 30, 0x0A000002);
    put_be16(f, 34, 40000);
    put_be16(f, 36, 80);
    put_be32(f, 38, 1000);  // seq
    put_be32(f, 42, 0);     // ack
    f[46] = 0x50;
    f[47] = flags;
    put_be16(f, 48, 65535);
    put_be16(f, 50, 0);
    put_be16(f, 52, 0);
    if (seed_pseudo) {
        std::uint32_t pseudo = ref_sum(f, 26, 34, 6 + (with_length ? std::uint32_t(20 + payload) : 0));
        put_be16(f, 50, std::uint16_t(pseudo));
    }
    return f;
}

inline Bytes udp_frame(std::size_t payload) {
    Bytes f = ethernet(kPeerMac, kNicMac, 0x0800, 28 + payload);
    f[14] = 0x45;
    put_be16(f, 16, std::uint16_t(28 + payload));
    put_be16(f, 18, 0x0001);
    put_be16(f, 20, 0);
    f[22] = 64;
    f[23] = 17;
    put_be16(f, 24, 0);
    put_be32(f, 26, 0x0A000001);
    put_be32(f, 30, 0x0A000002);
    put_be16(f, 34, 5000);
    put_be16(f, 36, 6000);
    put_be16(f, 38, std::uint16_t(8 + payload));
    put_be16(f, 40, 0);
    return f;
}

// Fills in valid IPv4 and TCP/UDP checksums (what a sender without offload does).
inline void finish_checksums(Bytes& f) {
    std::size_t ihl = (f[14] & 0xF) * 4;
    put_be16(f, 24, 0);
    put_be16(f, 24, std::uint16_t(~ref_sum(f, 14, 14 + ihl)));
    std::size_t l4 = 14 + ihl;
    std::size_t l4_len = be16(f, 16) - ihl;
    std::size_t at = l4 + (f[23] == 6 ? 16 : 6);
    put_be16(f, at, 0);
    std::uint32_t pseudo = ref_sum(f, 26, 34, f[23] + std::uint32_t(l4_len));
    put_be16(f, at, std::uint16_t(~ref_sum(f, l4, l4 + l4_len, pseudo)));
}

}  // namespace xover::test
