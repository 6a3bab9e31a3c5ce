// DmaWindow::place is all or nothing: when KVM refuses one half's memory
// slot (it overlaps another slot) or the guest-memory map has no room for
// it, the half that was already placed is taken back, so no slot and no
// translation stays behind, and a later place() works. Needs /dev/kvm (a
// VM with no vCPU; nothing runs).
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "xover/crossover/dma_window.hpp"
#include "xover/crossover/ring_area.hpp"
#include "xover/crossover/shared_memory.hpp"
#include "xover/error.hpp"
#include "xover/kvm/system.hpp"
#include "xover/vmm/ram_memory.hpp"

using namespace xover;

namespace {

constexpr std::uint64_t kWindow = 8192;  // two 4 KiB halves
constexpr std::uint32_t kWindowSlots = 0;
constexpr std::uint32_t kOtherSlot = 5;

struct Page {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ~Page() { ::munmap(p, 4096); }
};

bool slot_free(kvm::Vm& vm, std::uint64_t gpa, Page& page) {
    try {
        vm.set_memory_region(kOtherSlot + 1, gpa, 4096, page.p);
    } catch (const Error&) {
        return false;
    }
    vm.delete_memory_region(kOtherSlot + 1);
    return true;
}

}  // namespace

TEST_CASE("DMA window: a half KVM refuses takes back the other, and nothing stays placed", "[window][kvm]") {
    auto system = kvm::System::open();
    kvm::Vm vm = system.create_vm();
    vmm::RamMemory ram(1 << 20);
    crossover::DmaWindow window("test", kWindow, vm, ram, kWindowSlots);
    Page blocker, probe;
    // Another slot where the RX half would go: the TX half's slot is set
    // first, then the RX half's fails.
    constexpr std::uint64_t at = 0x40000000;
    vm.set_memory_region(kOtherSlot, at + kWindow / 2, 4096, blocker.p);

    CHECK_THROWS_AS(window.place(at), Error);
    CHECK(window.gpa() == 0);
    CHECK(window.half_gpa(crossover::DmaWindow::Half::Tx) == 0);
    CHECK(ram.span(at, 64).empty());          // no translation for the TX half
    CHECK(slot_free(vm, at, probe));          // its KVM slot is gone too

    vm.delete_memory_region(kOtherSlot);
    window.place(at);  // the same place now works
    CHECK(window.gpa() == at);
    CHECK(ram.span(at, 64).data() == window.host(crossover::DmaWindow::Half::Tx));
    CHECK_FALSE(slot_free(vm, at, probe));
    window.place(0);
    CHECK(slot_free(vm, at, probe));
}

TEST_CASE("DMA window: no room in the guest-memory map takes back both slots", "[window][kvm]") {
    auto system = kvm::System::open();
    kvm::Vm vm = system.create_vm();
    vmm::RamMemory ram(1 << 20);
    crossover::DmaWindow window("test", kWindow, vm, ram, kWindowSlots);
    Page elsewhere, probe;
    // Every extra region but one taken: the TX half gets the last, the RX
    // half none.
    std::vector<unsigned> taken;
    for (;;) {
        try {
            taken.push_back(ram.add_region(0x80000000 + taken.size() * 4096, 4096, static_cast<std::uint8_t*>(elsewhere.p)));
        } catch (const Error&) {
            break;
        }
    }
    REQUIRE(taken.size() >= 2);
    ram.remove_region(taken.back());
    taken.pop_back();

    constexpr std::uint64_t at = 0x40000000;
    CHECK_THROWS_AS(window.place(at), Error);
    CHECK(window.gpa() == 0);
    CHECK(ram.span(at, 64).empty());
    CHECK(slot_free(vm, at, probe));
    CHECK(slot_free(vm, at + kWindow / 2, probe));

    ram.remove_region(taken.back());  // room for both halves again
    window.place(at);
    CHECK(window.gpa() == at);
    CHECK(ram.span(at + kWindow / 2, 64).data() == window.host(crossover::DmaWindow::Half::Rx));
}

// detach_running(): the half goes back to private memory with what the
// element held, and the memory slot stays where it was (KVM follows the
// host mapping): the element no longer sees writes to the half.
TEST_CASE("DMA window: a running detach copies back and keeps the slot", "[window][kvm]") {
    using Half = crossover::DmaWindow::Half;
    auto system = kvm::System::open();
    kvm::Vm vm = system.create_vm();
    REQUIRE(vm.follows_host_mappings());
    vmm::RamMemory ram(1 << 20);
    crossover::DmaWindow window("test", kWindow, vm, ram, kWindowSlots);
    constexpr std::uint64_t at = 0x40000000;
    window.place(at);
    std::uint8_t* tx = window.host(Half::Tx);
    window.attach(Half::Tx, window.tx_element_fd(), true);
    tx[0] = 0x5a;  // a frame the peer's guest has not read yet
    CHECK(window.tx_element()[0] == 0x5a);

    window.detach_running(Half::Tx);
    CHECK_FALSE(window.attached(Half::Tx));
    CHECK(window.remaps() == 2);
    CHECK(window.host(Half::Tx) == tx);
    CHECK(tx[0] == 0x5a);                   // our guest still sees its slot
    tx[0] = 0x11;                           // and writes it privately now
    CHECK(window.tx_element()[0] == 0x5a);  // the peer's buffer keeps its frame
    Page probe;
    CHECK_FALSE(slot_free(vm, at, probe));  // the slot never went away
    CHECK(ram.span(at, 1).data() == tx);
}

// A peer's element that its owner could shrink is refused: our guest's
// half would fault on the memory cut away.
TEST_CASE("DMA window: an element not sealed against shrinking is refused", "[window][kvm]") {
    using Half = crossover::DmaWindow::Half;
    auto system = kvm::System::open();
    kvm::Vm vm = system.create_vm();
    vmm::RamMemory ram(1 << 20);
    crossover::DmaWindow window("test", kWindow, vm, ram, kWindowSlots);
    window.place(0x40000000);
    kvm::UniqueFd unsealed(::memfd_create("unsealed", MFD_CLOEXEC));
    REQUIRE(::ftruncate(unsealed.get(), kWindow / 2) == 0);
    CHECK_THROWS_WITH(window.attach(Half::Rx, unsealed.get(), false), Catch::Contains("not sealed"));
    CHECK_FALSE(window.attached(Half::Rx));
}

// The ring area follows its BAR: a memory slot and a translation where it
// decodes, none once it moves or stops decoding; a slot KVM refuses leaves
// nothing placed. What the guest writes there is in the memfd a window
// peer maps.
TEST_CASE("ring area: placed where its BAR decodes, moved, removed, all or nothing", "[window][kvm]") {
    auto system = kvm::System::open();
    kvm::Vm vm = system.create_vm();
    vmm::RamMemory ram(1 << 20);
    crossover::RingArea rings("test", vm, ram, kWindowSlots);
    Page blocker, probe;
    constexpr std::uint64_t at = 0x40000000, moved = 0x50000000;

    vm.set_memory_region(kOtherSlot, at, 4096, blocker.p);  // KVM refuses an overlap
    CHECK_THROWS_AS(rings.place(at), Error);
    CHECK(rings.gpa() == 0);
    CHECK(ram.span(at + 4096, 64).empty());
    vm.delete_memory_region(kOtherSlot);

    rings.place(at);
    CHECK(rings.gpa() == at);
    auto in = ram.span(at + 8, 5);
    REQUIRE(in.data() == rings.host() + 8);
    std::memcpy(in.data(), "rings", 5);
    crossover::SharedMapping peer(rings.fd(), rings.size());
    CHECK(std::memcmp(peer.data() + 8, "rings", 5) == 0);
    CHECK(ram.span(at + rings.size() - 4, 8).empty());  // runs off the area

    rings.place(moved);
    CHECK(ram.span(at, 8).empty());
    CHECK(slot_free(vm, at, probe));
    CHECK(ram.span(moved + 8, 5).data() == rings.host() + 8);
    rings.place(0);
    CHECK(rings.gpa() == 0);
    CHECK(ram.span(moved, 8).empty());
    CHECK(slot_free(vm, moved, probe));
}
