// Writes the seed corpora in tests/fuzz/corpus/<target>/ (run by hand:
// `cmake --build build-fuzz --target fuzz_seed_writer` then
// `build-fuzz/fuzz/fuzz_seed_writer tests/fuzz/corpus`). Each seed is a
// small valid input — a working ring, a real message, an image the unit
// tests load — laid out as the target's FuzzedDataProvider reads it, so
// the fuzzer starts from the paths that work and mutates from there.
// (TOML seeds are the example configs, copied by scripts/fuzz.sh's
// author; see tests/fuzz/corpus/fuzz_toml_config.)
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_loader_images.hpp"
#include "xover/crossover/protocol.hpp"
#include "xover/e1000/registers.hpp"
#include "xover/nic/shared_nic_state.hpp"

using namespace xover;
using Bytes = std::vector<std::uint8_t>;

namespace {

// The inverse of FuzzedDataProvider: integers are read from the end of
// the input (most significant byte first, as many bytes as the range
// needs), byte strings from the front.
class InputBuilder {
public:
    void in_range(std::uint64_t value, std::uint64_t min, std::uint64_t max) {
        const std::uint64_t range = max - min, v = value - min;
        unsigned n = 0;
        while (n < 8 && (range >> (8 * n)) > 0) ++n;
        for (unsigned i = 0; i < n; ++i) tail_.push_back(std::uint8_t(v >> (8 * (n - 1 - i))));
    }
    template <typename T>
    void integral(T value) {
        in_range(std::uint64_t(value), 0, std::uint64_t(T(~T(0))));
    }
    void boolean(bool b) { integral<std::uint8_t>(b); }
    void bytes(const Bytes& b) { front_.insert(front_.end(), b.begin(), b.end()); }
    Bytes finish() const {
        Bytes out = front_;
        out.insert(out.end(), tail_.rbegin(), tail_.rend());
        return out;
    }

private:
    Bytes front_, tail_;
};

void put(Bytes& b, std::size_t at, std::uint64_t value, std::size_t width) { test::put(b, at, value, width); }

void save(const std::filesystem::path& dir, const std::string& name, const Bytes& data) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

// --- fuzz_virtqueue: 8 writable buffers (direct, chained or indirect) ---
enum class Chains { Direct, Chained, Indirect };
Bytes virtqueue_image(Chains kind) {
    Bytes m(0x500, 0);  // rings and tables only: the buffers lie in zeroed memory above
    for (std::uint16_t i = 0; i < 8; ++i) {
        std::size_t d = 0x100 + 16 * i;
        put(m, d, 0x4000 + i * 0x200, 8), put(m, d + 8, 0x200, 4);
        std::uint16_t flags = 2;  // WRITE
        if (kind == Chains::Chained && i % 2 == 0) flags |= 1, put(m, d + 14, i + 1, 2);  // NEXT
        put(m, d + 12, flags, 2);
    }
    if (kind == Chains::Indirect) {  // head 0 is a table of 4 writable buffers
        put(m, 0x100, 0x400, 8), put(m, 0x108, 64, 4), put(m, 0x10c, 4, 2);
        for (int k = 0; k < 4; ++k) put(m, 0x400 + 16 * k, 0x5400 + 0x100 * k, 8), put(m, 0x408 + 16 * k, 0x100, 4),
                                    put(m, 0x40c + 16 * k, 2 | (k < 3 ? 1 : 0), 2), put(m, 0x40e + 16 * k, k + 1, 2);
    }
    put(m, 0x202, 8, 2);  // avail idx
    for (int i = 0; i < 8; ++i) put(m, 0x204 + 2 * i, kind == Chains::Chained ? (i % 4) * 2 : i, 2);
    return m;
}
Bytes virtqueue_seed(Chains kind, std::uint8_t features, std::size_t frame) {
    InputBuilder ops;  // place, pop, publish, notifications on, place, publish
    ops.in_range(1, 0, 6), ops.in_range(frame, 0, 9018);
    ops.in_range(0, 0, 6);
    ops.in_range(2, 0, 6);
    ops.in_range(3, 0, 6), ops.boolean(true);
    ops.in_range(1, 0, 6), ops.in_range(60, 0, 9018);
    ops.in_range(2, 0, 6);
    Bytes op_bytes = ops.finish();
    InputBuilder in;
    in.integral<std::uint16_t>(8), in.integral<std::uint32_t>(0x100), in.integral<std::uint32_t>(0x200);
    in.integral<std::uint32_t>(0x300), in.integral<std::uint8_t>(features), in.integral<std::uint16_t>(0);
    in.in_range(3, 0, 8), in.in_range(frame, 0, 9018), in.in_range(op_bytes.size(), 0, 256);
    in.bytes(op_bytes);
    in.bytes(virtqueue_image(kind));
    return in.finish();
}

// --- fuzz_e1000_mmio: a TX ring of 8 frames and an RX ring of 8 buffers ---
void mmio_write(InputBuilder& ops, std::uint32_t offset, std::uint32_t value) {
    ops.in_range(0, 0, 9), ops.boolean(false), ops.integral(offset), ops.in_range(0, 0, 5);
    ops.integral<std::uint64_t>(value);
}
Bytes e1000_seed(bool context_descriptors) {
    namespace reg = e1000::reg;
    InputBuilder ops;
    mmio_write(ops, reg::IMS, 0xffff);
    mmio_write(ops, reg::RDBAL, 0x200), mmio_write(ops, reg::RDLEN, 128), mmio_write(ops, reg::RDT, 7);
    mmio_write(ops, reg::RCTL, 0x2 | 0x8000);  // EN, BAM
    mmio_write(ops, reg::TDBAL, 0x100), mmio_write(ops, reg::TDLEN, 128), mmio_write(ops, reg::TCTL, 0x2);
    mmio_write(ops, reg::TDT, 4);
    ops.in_range(6, 0, 9), ops.in_range(200, 0, 16384);            // a frame arrives
    ops.in_range(3, 0, 9), ops.boolean(false), ops.integral<std::uint32_t>(reg::ICR), ops.in_range(0, 0, 5);
    ops.in_range(7, 0, 9), ops.in_range(1'000'000, 0, 10'000'000);  // timers run
    Bytes op_bytes = ops.finish();
    Bytes m(0x800, 0);  // rings and TX frames; RX buffers lie in zeroed memory above
    for (int i = 0; i < 8; ++i) {
        std::size_t d = 0x100 + 16 * i;
        put(m, d, 0x400 + i * 0x80, 8), put(m, d + 8, 100, 2), m[d + 11] = 0x09;  // EOP | RS
        if (context_descriptors && i == 0) {  // a TCP/IP context, then data descriptors
            put(m, d, 0x22180e, 8), put(m, d + 8, 0x25000000u | 100, 4), m[d + 13] = 54, put(m, d + 14, 536, 2);
        } else if (context_descriptors) {
            put(m, d + 8, 0x00100000u | 100 | 0x29000000u, 4), m[d + 13] = 0x3;  // DEXT data, TXSM|IXSM
        }
        put(m, 0x200 + 16 * i, 0x8000 + i * 0x800, 8);
        const std::size_t f = 0x400 + i * 0x80;
        for (int k = 0; k < 100; ++k) m[f + k] = std::uint8_t(k < 6 ? 0xff : k);
        m[f + 12] = 0x08, m[f + 13] = 0x00, m[f + 14] = 0x45;
    }
    InputBuilder in;
    in.in_range(op_bytes.size(), 0, 1024);
    in.bytes(op_bytes);
    in.bytes(m);
    return in.finish();
}

// --- fuzz_broker_protocol: one of each message, with its fds ---
Bytes protocol_seed(const crossover::Message& message) {
    auto encoded = crossover::encode(message);
    Bytes out{std::uint8_t(encoded.fds.size())};
    out.insert(out.end(), encoded.bytes.begin(), encoded.bytes.end());
    return out;
}
void protocol_seeds(const std::filesystem::path& dir) {
    using namespace crossover;
    auto fd = [] { return kvm::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); };
    Register r{.vm_name = "a", .consent_group = "g1"};
    NicRegistration nic{.index = 0, .mac = net::MacAddress{{0x52, 0x54, 0, 0, 1, 1}}, .model = "e1000",
                        .peers = {"b", "c"}, .mode = LinkMode::Window, .ram_size = 64 << 20, .window_size = 1 << 20,
                        .rings_size = 64 << 10};
    nic.ram = fd(), nic.state = fd(), nic.window = fd(), nic.rings = fd(), nic.irq = fd(), nic.doorbell = fd();
    r.nics.push_back(std::move(nic));
    save(dir, "register", protocol_seed(std::move(r)));
    Register s{.vm_name = "a", .consent_group = "g1"};
    s.sounds.push_back(SoundRegistration{.index = 0, .peer = "b", .rate = 48000, .channels = 2, .inbox = fd()});
    s.sounds.push_back(SoundRegistration{.index = 1, .peer = "c", .rate = 44100, .channels = 1, .inbox = fd()});
    save(dir, "register_sounds", protocol_seed(std::move(s)));
    save(dir, "sound_link_up", protocol_seed(SoundLinkUp{.local_card = 0, .peer_vm = "b", .peer_card = 1, .peer_inbox = fd()}));
    save(dir, "sound_link_down",
         protocol_seed(SoundLinkDown{.local_card = 0, .peer_vm = "b", .reason = "b went away", .refused = false}));
    LinkUp up{.link_id = 7, .local_nic = 0, .peer_vm = "b", .peer_nic = 1, .peer_mac = net::MacAddress{{0x52, 0x54, 0, 0, 2, 2}},
              .peer_model = "virtio-net", .automatic = true, .producer_slot = 3, .peer_ram_size = 64 << 20};
    up.peer_ram = fd(), up.peer_state = fd(), up.peer_irq = fd(), up.peer_doorbell = fd(), up.peer_tx_irq = fd();
    save(dir, "link_up", protocol_seed(std::move(up)));
    save(dir, "link_down", protocol_seed(LinkDown{.link_id = 7, .local_nic = 0, .reason = "peer exited"}));
    save(dir, "register_ok", protocol_seed(RegisterOk{}));
    save(dir, "register_error", protocol_seed(RegisterError{"duplicate name"}));
    save(dir, "frame_seen", protocol_seed(FrameSeen{.nic = 0, .dst = net::MacAddress{{0x52, 0x54, 0, 0, 3, 3}}}));
    save(dir, "status_request", protocol_seed(StatusRequest{true}));
    save(dir, "status_reply", protocol_seed(StatusReply{"{\"vms\":[]}"}));
    save(dir, "set_peers", protocol_seed(SetPeers{.nic = 0, .peers = {"b", "c"}}));
}

// --- fuzz_kernel_loader: options, command line, image ---
Bytes loader_seed(std::uint8_t options, const std::string& cmdline, const Bytes& image) {
    InputBuilder in;
    in.integral(options), in.integral<std::uint8_t>(std::uint8_t(cmdline.size()));
    in.bytes(Bytes(cmdline.begin(), cmdline.end()));
    in.bytes(image);
    return in.finish();
}
void loader_seeds(const std::filesystem::path& dir) {
    save(dir, "elf64_pvh", loader_seed(0, "console=ttyS0", test::make_elf({})));
    save(dir, "elf32_pvh", loader_seed(4, "a=b", test::make_elf({.elf64 = false})));
    save(dir, "elf_note_section", loader_seed(1, "", test::make_elf({.note_in_section_only = true})));
    save(dir, "bzimage", loader_seed(4, "console=ttyS0 panic=-1", test::make_bzimage({.payload = 0x400})));
    save(dir, "bzimage_fixed", loader_seed(0, "quiet", test::make_bzimage({.pref_address = 0x100000, .relocatable = 0,
                                                                           .payload = 0x400})));
}

// --- fuzz_peer_page: sane pages and rings, then a few lies ---
void page_write(InputBuilder& in, std::size_t offset, std::uint32_t value) {
    constexpr std::size_t kControl = nic::kStatePageBytes + offsetof(nic::TxHandoff, slots);
    in.in_range(offset, 0, kControl - 4);
    for (int i = 0; i < 4; ++i) in.integral<std::uint8_t>(std::uint8_t(value >> (8 * i)));
}
using PageWrites = std::vector<std::pair<std::size_t, std::uint32_t>>;
Bytes peer_page_seed(bool receiver_e1000, bool sender_e1000, const PageWrites& receiver_lies,
                     const PageWrites& sender_lies = {}) {
    InputBuilder in;
    in.boolean(receiver_e1000), in.boolean(sender_e1000);
    in.in_range(receiver_lies.size() + 1, 0, 64);
    page_write(in, offsetof(nic::SharedNicState, rdt), 15);
    for (auto [offset, value] : receiver_lies) page_write(in, offset, value);
    in.in_range(sender_lies.size(), 0, 64);
    for (auto [offset, value] : sender_lies) page_write(in, offset, value);
    Bytes m(0x300, 0);  // the rings (corrupt()'s layout); buffers lie in zeroed memory above
    for (int i = 0; i < 16; ++i) {
        put(m, 0x100 + 16 * i, 0x4000 + 0x100 * i, 8);
        if (!receiver_e1000) put(m, 0x108 + 16 * i, 0x100, 4), put(m, 0x10c + 16 * i, 2, 2);
        put(m, 0x204 + 2 * i, i, 2);
    }
    put(m, 0x202, 16, 2);
    in.in_range(m.size(), 0, 64 << 10);
    in.bytes(m);
    in.in_range(100, 0, 9018), in.in_range(3, 0, 6);
    in.integral<std::uint32_t>(0), in.integral<std::uint32_t>(0x4000), in.integral<std::uint32_t>(100);
    return in.finish();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path root = argv[1];
    save(root / "fuzz_virtqueue", "direct_mergeable", virtqueue_seed(Chains::Direct, 4, 1500));
    save(root / "fuzz_virtqueue", "chained_event_idx", virtqueue_seed(Chains::Chained, 1, 700));
    save(root / "fuzz_virtqueue", "indirect", virtqueue_seed(Chains::Indirect, 2 | 4, 900));
    save(root / "fuzz_e1000_mmio", "legacy_rings", e1000_seed(false));
    save(root / "fuzz_e1000_mmio", "offload_rings", e1000_seed(true));
    protocol_seeds(root / "fuzz_broker_protocol");
    loader_seeds(root / "fuzz_kernel_loader");
    const std::size_t rdh = offsetof(nic::SharedNicState, rdh), rdt = offsetof(nic::SharedNicState, rdt);
    save(root / "fuzz_peer_page", "e1000_to_e1000", peer_page_seed(true, true, {}));
    save(root / "fuzz_peer_page", "virtio_to_e1000", peer_page_seed(true, false, {}));
    save(root / "fuzz_peer_page", "e1000_to_virtio", peer_page_seed(false, true, {}));
    save(root / "fuzz_peer_page", "huge_ring_entries",
         peer_page_seed(true, true, {{offsetof(nic::SharedNicState, rx_config.ring_entries), 0xffffffff}}));
    save(root / "fuzz_peer_page", "rdh_past_ring", peer_page_seed(false, false, {{rdh, 0xfff0}}));
    // A sender's window ledger that lends slots 8.. of a ring of 2^32 - 1
    // descriptors, and a receiver that holds only one: the walk's bound is
    // the ledger's ring size, read from the sender's page.
    const std::size_t ledger = offsetof(nic::SharedNicState, e1000.window_tx);
    save(root / "fuzz_peer_page", "ledger_huge_ring",
         peer_page_seed(true, true, {{rdt, 0}, {rdh, 1}},
                        {{ledger + offsetof(nic::WindowTxLedger, peer_may_complete), 1},
                         {ledger + offsetof(nic::WindowTxLedger, lent), 8},
                         {ledger + offsetof(nic::WindowTxLedger, lent) + 4, 0xfffffff0},
                         {ledger + offsetof(nic::WindowTxLedger, ring_entries), 0xffffffff}}));
    return 0;
}
