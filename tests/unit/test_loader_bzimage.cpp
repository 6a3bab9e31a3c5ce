// Linux bzImage loader: header checks, load address, zero page contents.
#include <catch2/catch.hpp>

#include <asm/bootparam.h>

#include <string>

#include "fake_guest_memory.hpp"
#include "test_loader_images.hpp"
#include "xover/error.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/vmm/loader.hpp"

using namespace xover::vmm;
using xover::test::BzImageSpec;
using xover::test::make_bzimage;
using xover::test::TempFile;

namespace {

constexpr std::uint64_t kMem = 64ull << 20;

std::string error_of(FakeGuestMemory& mem, const LoadRequest& r) {
    try {
        load_kernel(mem, r);
    } catch (const xover::Error& e) {
        return e.what();
    }
    return "(no error)";
}

LoadRequest request_for(const TempFile& kernel, std::uint64_t mem = kMem) {
    LoadRequest r;
    r.kernel = kernel.path();
    r.cmdline = "console=ttyS0 panic=-1";
    r.memory_bytes = mem;
    return r;
}

}  // namespace

TEST_CASE("bzImage loads at pref_address and fills the zero page", "[loader][bzimage]") {
    BzImageSpec spec;
    const auto image = make_bzimage(spec);
    TempFile kernel(image);
    TempFile initrd(std::vector<std::uint8_t>(10000, 0x5a), "initrd");
    FakeGuestMemory mem(kMem);
    auto r = request_for(kernel);
    r.initrd = initrd.path();

    const BootImage boot = load_kernel(mem, r);
    CHECK(boot.mode == BootImage::Mode::Linux64);
    CHECK(boot.entry == spec.pref_address + 0x200);
    CHECK(boot.boot_info == layout::kZeroPageAddr);
    CHECK(boot.kernel_end == spec.pref_address + spec.init_size);
    const std::size_t setup = (spec.setup_sects + 1) * 512;
    CHECK(mem.bytes[spec.pref_address] == image[setup]);
    CHECK(mem.bytes[spec.pref_address + spec.payload - 1] == image.back());

    const auto zp = mem.at<boot_params>(layout::kZeroPageAddr);
    CHECK(zp.hdr.header == 0x53726448);
    CHECK(zp.hdr.version == spec.version);
    CHECK(zp.hdr.type_of_loader == 0xff);
    CHECK((zp.hdr.loadflags & CAN_USE_HEAP));
    CHECK((zp.hdr.loadflags & LOADED_HIGH));
    CHECK(zp.hdr.heap_end_ptr == 0xfe00);
    CHECK(zp.hdr.cmd_line_ptr == layout::kCmdlineAddr);
    CHECK(zp.ext_cmd_line_ptr == 0);
    CHECK(std::string(reinterpret_cast<const char*>(&mem.bytes[zp.hdr.cmd_line_ptr])) == "console=ttyS0 panic=-1");
    CHECK(zp.hdr.init_size == spec.init_size);
    CHECK(zp.hdr.pref_address == spec.pref_address);

    CHECK(zp.hdr.ramdisk_size == 10000);
    CHECK(zp.hdr.ramdisk_image == ((kMem - 10000) & ~0xfffull));
    CHECK(mem.bytes[zp.hdr.ramdisk_image] == 0x5a);

    REQUIRE(zp.e820_entries == 3);
    CHECK((zp.e820_table[0].addr == 0 && zp.e820_table[0].type == 1));
    CHECK((zp.e820_table[1].addr == layout::kEbdaAddr && zp.e820_table[1].type == 2));
    CHECK((zp.e820_table[2].addr == 0x100000 && zp.e820_table[2].size == kMem - 0x100000));
}

TEST_CASE("bzImage falls back to 1 MiB when pref_address does not fit", "[loader][bzimage]") {
    BzImageSpec spec;
    spec.pref_address = 0x4000000;  // 64 MiB: above RAM of a 32 MiB guest
    TempFile kernel(make_bzimage(spec));
    FakeGuestMemory mem(32ull << 20);
    const BootImage boot = load_kernel(mem, request_for(kernel, 32ull << 20));
    CHECK(boot.entry == 0x100000 + 0x200);
    CHECK(mem.at<boot_params>(layout::kZeroPageAddr).hdr.code32_start == 0x100000);
}

TEST_CASE("non-relocatable bzImage whose pref_address does not fit is refused", "[loader][bzimage]") {
    BzImageSpec spec;
    spec.pref_address = 0x4000000;
    spec.relocatable = 0;
    TempFile kernel(make_bzimage(spec));
    FakeGuestMemory mem(32ull << 20);
    const auto msg = error_of(mem, request_for(kernel, 32ull << 20));
    CHECK_THAT(msg, Catch::Contains(kernel.path().string()));
    CHECK_THAT(msg, Catch::Contains("needs"));
}

TEST_CASE("bzImage whose init_size exceeds memory is refused", "[loader][bzimage]") {
    BzImageSpec spec;
    spec.init_size = 40u << 20;
    TempFile kernel(make_bzimage(spec));
    FakeGuestMemory mem(32ull << 20);
    const auto msg = error_of(mem, request_for(kernel, 32ull << 20));
    CHECK_THAT(msg, Catch::Contains("needs 40 MiB of RAM"));
    CHECK_THAT(msg, Catch::Contains("guest memory is 32 MiB"));
}

TEST_CASE("bzImage header checks", "[loader][bzimage]") {
    FakeGuestMemory mem(kMem);
    SECTION("protocol older than 2.06") {
        BzImageSpec spec;
        spec.version = 0x0205;
        TempFile kernel(make_bzimage(spec));
        const auto msg = error_of(mem, request_for(kernel));
        CHECK_THAT(msg, Catch::Contains("boot protocol 2.05 is older than 2.06"));
        CHECK_THAT(msg, Catch::Contains(kernel.path().string()));
    }
    SECTION("not 64-bit capable") {
        BzImageSpec spec;
        spec.xloadflags = 0;
        TempFile kernel(make_bzimage(spec));
        CHECK_THAT(error_of(mem, request_for(kernel)), Catch::Contains("not 64-bit capable (XLF_KERNEL_64"));
    }
    SECTION("zImage") {
        BzImageSpec spec;
        spec.loadflags = 0;
        TempFile kernel(make_bzimage(spec));
        CHECK_THAT(error_of(mem, request_for(kernel)), Catch::Contains("zImage"));
    }
    SECTION("command line longer than cmdline_size") {
        BzImageSpec spec;
        spec.cmdline_size = 8;
        TempFile kernel(make_bzimage(spec));
        CHECK_THAT(error_of(mem, request_for(kernel)), Catch::Contains("accepts at most 8"));
    }
    SECTION("setup_sects past the end") {
        BzImageSpec spec;
        spec.setup_sects = 60;
        spec.payload = 0;
        TempFile kernel(make_bzimage(spec));
        auto image = make_bzimage(spec);
        image.resize(0x1000);
        TempFile cut(image);
        CHECK_THAT(error_of(mem, request_for(cut)), Catch::Contains("setup_sects 60 points past the end"));
    }
}

TEST_CASE("bzImage initrd respects initrd_addr_max", "[loader][bzimage]") {
    BzImageSpec spec;
    spec.initrd_addr_max = (48u << 20) - 1;
    TempFile kernel(make_bzimage(spec));
    TempFile initrd(std::vector<std::uint8_t>(4096, 1), "initrd");
    FakeGuestMemory mem(kMem);
    auto r = request_for(kernel);
    r.initrd = initrd.path();
    load_kernel(mem, r);
    const auto zp = mem.at<boot_params>(layout::kZeroPageAddr);
    CHECK(zp.hdr.ramdisk_image == (48u << 20) - 4096);
}
