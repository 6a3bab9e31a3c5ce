// PVH ELF loader: segments land at p_paddr with bss zeroed, the entry comes
// from the Xen note, and hvm_start_info describes cmdline, initrd and e820.
#include <catch2/catch.hpp>

#include <string>

#include "fake_guest_memory.hpp"
#include "test_loader_images.hpp"
#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/vmm/loader.hpp"
#include "xover/vmm/pvh_abi.hpp"

using namespace xover::vmm;
using xover::test::ElfSpec;
using xover::test::make_elf;
using xover::test::TempFile;

namespace {

constexpr std::uint64_t kMem = 16ull << 20;

LoadRequest request_for(const TempFile& kernel, std::string cmdline = "console=ttyS0") {
    LoadRequest r;
    r.kernel = kernel.path();
    r.cmdline = std::move(cmdline);
    r.memory_bytes = kMem;
    return r;
}

std::string error_of(FakeGuestMemory& mem, const LoadRequest& r) {
    try {
        load_kernel(mem, r);
    } catch (const xover::Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("PVH ELF64: segment, bss, entry and start info", "[loader][pvh]") {
    ElfSpec spec;
    spec.pvh_entry = 0x100001;
    TempFile kernel(make_elf(spec));
    FakeGuestMemory mem(kMem);
    std::fill(mem.bytes.begin() + 0x100000, mem.bytes.begin() + 0x100200, 0xcc);  // bss must be cleared

    const BootImage boot = load_kernel(mem, request_for(kernel));
    CHECK(boot.mode == BootImage::Mode::Pvh32);
    CHECK(boot.entry == 0x100001);
    CHECK(boot.boot_info == layout::kStartInfoAddr);
    CHECK(boot.kernel_end == 0x100000 + spec.code.size() + spec.bss);
    CHECK(mem.bytes[0x100000] == 0xf4);
    CHECK(mem.bytes[0x100002] == 0xfd);
    CHECK(mem.bytes[0x100003] == 0);                              // bss
    CHECK(mem.bytes[0x100000 + spec.code.size() + spec.bss - 1] == 0);
    CHECK(mem.bytes[0x100000 + spec.code.size() + spec.bss] == 0xcc);  // past memsz: untouched

    const auto info = mem.at<pvh::StartInfo>(layout::kStartInfoAddr);
    CHECK(info.magic == 0x336ec578);
    CHECK(info.version == 1);
    CHECK(info.nr_modules == 0);
    CHECK(info.cmdline_paddr == layout::kCmdlineAddr);
    CHECK(std::string(reinterpret_cast<const char*>(&mem.bytes[info.cmdline_paddr])) == "console=ttyS0");

    // Default map for 16 MiB: low RAM, EBDA..1M reserved, 1M..16M RAM.
    REQUIRE(info.memmap_entries == 3);
    auto e0 = mem.at<pvh::MemmapEntry>(info.memmap_paddr);
    auto e1 = mem.at<pvh::MemmapEntry>(info.memmap_paddr + 24);
    auto e2 = mem.at<pvh::MemmapEntry>(info.memmap_paddr + 48);
    CHECK((e0.addr == 0 && e0.size == layout::kLowRamEnd && e0.type == 1));
    CHECK((e1.addr == layout::kEbdaAddr && e1.type == 2));
    CHECK((e2.addr == 0x100000 && e2.size == kMem - 0x100000 && e2.type == 1));
}

TEST_CASE("PVH ELF32 with an 8-byte note descriptor", "[loader][pvh]") {
    ElfSpec spec;
    spec.elf64 = false;
    spec.note_descsz = 8;
    spec.pvh_entry = 0x100002;
    TempFile kernel(make_elf(spec));
    FakeGuestMemory mem(kMem);
    CHECK(load_kernel(mem, request_for(kernel)).entry == 0x100002);
    CHECK(mem.bytes[0x100000] == 0xf4);
}

TEST_CASE("PVH note found through SHT_NOTE when there is no PT_NOTE", "[loader][pvh]") {
    for (bool elf64 : {true, false}) {
        ElfSpec spec;
        spec.elf64 = elf64;
        spec.note_in_section_only = true;
        spec.pvh_entry = 0x100000;
        TempFile kernel(make_elf(spec));
        FakeGuestMemory mem(kMem);
        CHECK(load_kernel(mem, request_for(kernel)).entry == 0x100000);
    }
}

TEST_CASE("PVH ELF without the Xen note is refused with advice", "[loader][pvh]") {
    ElfSpec spec;
    spec.pvh_note = false;
    TempFile kernel(make_elf(spec));
    FakeGuestMemory mem(kMem);
    const auto msg = error_of(mem, request_for(kernel));
    CHECK_THAT(msg, Catch::Contains(kernel.path().string()));
    CHECK_THAT(msg, Catch::Contains("has no XEN_ELFNOTE_PHYS32_ENTRY note; build with CONFIG_PVH or use a bzImage"));
}

TEST_CASE("PVH segment outside guest memory is refused", "[loader][pvh]") {
    ElfSpec spec;
    spec.paddr = kMem - 2;  // code is 3 bytes + bss
    TempFile kernel(make_elf(spec));
    FakeGuestMemory mem(kMem);
    const auto msg = error_of(mem, request_for(kernel));
    CHECK_THAT(msg, Catch::Contains("does not fit in guest memory"));
    CHECK_THAT(msg, Catch::Contains(kernel.path().string()));
}

TEST_CASE("PVH segment over the boot structures is refused", "[loader][pvh]") {
    ElfSpec spec;
    spec.paddr = layout::kStartInfoAddr;
    TempFile kernel(make_elf(spec));
    FakeGuestMemory mem(kMem);
    CHECK_THAT(error_of(mem, request_for(kernel)), Catch::Contains("overlaps xover's boot structures"));
}

TEST_CASE("PVH initrd becomes module 0 at the top of RAM below 3 GiB", "[loader][pvh]") {
    TempFile kernel(make_elf(ElfSpec{}));
    std::vector<std::uint8_t> rd(5000, 0xab);
    TempFile initrd(rd, "initrd");
    FakeGuestMemory mem(kMem);
    auto r = request_for(kernel);
    r.initrd = initrd.path();
    load_kernel(mem, r);

    const auto info = mem.at<pvh::StartInfo>(layout::kStartInfoAddr);
    REQUIRE(info.nr_modules == 1);
    const auto mod = mem.at<pvh::ModlistEntry>(info.modlist_paddr);
    CHECK(mod.size == 5000);
    CHECK(mod.paddr % 4096 == 0);
    CHECK(mod.paddr == ((kMem - 5000) & ~0xfffull));
    CHECK(mem.bytes[mod.paddr] == 0xab);
    CHECK(mem.bytes[mod.paddr + 4999] == 0xab);
}

TEST_CASE("Initrd that cannot fit above the kernel is refused", "[loader][pvh]") {
    TempFile kernel(make_elf(ElfSpec{}));
    TempFile initrd(std::vector<std::uint8_t>(kMem - 0x100000, 1), "initrd");
    FakeGuestMemory mem(kMem);
    auto r = request_for(kernel);
    r.initrd = initrd.path();
    const auto msg = error_of(mem, r);
    CHECK_THAT(msg, Catch::Contains("initrd " + initrd.path().string()));
    CHECK_THAT(msg, Catch::Contains("does not fit"));
}

TEST_CASE("Initrd larger than guest memory is refused before reading", "[loader][pvh]") {
    TempFile kernel(make_elf(ElfSpec{}));
    TempFile initrd(std::vector<std::uint8_t>(kMem + 1, 1), "initrd");
    FakeGuestMemory mem(kMem);
    auto r = request_for(kernel);
    r.initrd = initrd.path();
    CHECK_THAT(error_of(mem, r), Catch::Contains("is larger than guest memory"));
}

TEST_CASE("Explicit memory map is passed through to the guest", "[loader][pvh]") {
    TempFile kernel(make_elf(ElfSpec{}));
    FakeGuestMemory mem(kMem);
    auto r = request_for(kernel);
    r.memory_map = {{0, 0x9fc00, 1}, {0x100000, kMem - 0x100000, 1}};
    load_kernel(mem, r);
    const auto info = mem.at<pvh::StartInfo>(layout::kStartInfoAddr);
    REQUIRE(info.memmap_entries == 2);
    CHECK(mem.at<pvh::MemmapEntry>(info.memmap_paddr + 24).size == kMem - 0x100000);
}

TEST_CASE("default_memory_map splits RAM around the 3 GiB hole", "[loader]") {
    const auto map = default_memory_map(4ull << 30);
    REQUIRE(map.size() == 4);
    CHECK((map[2].addr == 0x100000 && map[2].addr + map[2].size == 0xc0000000));
    CHECK((map[3].addr == 0x100000000 && map[3].size == 1ull << 30 && map[3].type == 1));
}

TEST_CASE("Kernel file errors name the file", "[loader]") {
    FakeGuestMemory mem(kMem);
    LoadRequest r;
    r.memory_bytes = kMem;

    r.kernel = "/nonexistent/xover-kernel";
    auto msg = error_of(mem, r);
    CHECK_THAT(msg, Catch::Contains("/nonexistent/xover-kernel"));
    CHECK_THAT(msg, Catch::Contains("No such file"));

    r.kernel = std::filesystem::temp_directory_path();
    CHECK_THAT(error_of(mem, r), Catch::Contains("not a regular file"));

    TempFile junk(std::vector<std::uint8_t>(4096, 0x90));
    r.kernel = junk.path();
    msg = error_of(mem, r);
    CHECK_THAT(msg, Catch::Contains(junk.path().string()));
    CHECK_THAT(msg, Catch::Contains("not an ELF file nor a Linux bzImage"));

    TempFile huge(std::vector<std::uint8_t>(kMem + 1, 0));
    r.kernel = huge.path();
    CHECK_THAT(error_of(mem, r), Catch::Contains("is larger than guest memory"));

    auto elf = make_elf(ElfSpec{});
    elf.resize(40);
    TempFile truncated(elf);
    r.kernel = truncated.path();
    CHECK_THAT(error_of(mem, r), Catch::Contains("truncated ELF header"));
}

TEST_CASE("Command line longer than the boot area is refused", "[loader][pvh]") {
    TempFile kernel(make_elf(ElfSpec{}));
    FakeGuestMemory mem(kMem);
    CHECK_THAT(error_of(mem, request_for(kernel, std::string(layout::kCmdlineMax, 'x'))),
               Catch::Contains("command line is"));
}
