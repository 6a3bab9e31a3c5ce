// Loads a real distribution bzImage (Debian's vmlinuz) when
// XOVER_TEST_VMLINUZ points at one (tests/integration/bzimage_real.sh sets
// it after scripts/fetch-test-kernel.sh); skipped otherwise.
#include <catch2/catch.hpp>

#include <asm/bootparam.h>

#include <cstdlib>
#include <memory>

#include "fake_guest_memory.hpp"
#include "xover/vmm/layout.hpp"
#include "xover/vmm/loader.hpp"

using namespace xover::vmm;

TEST_CASE("real bzImage from XOVER_TEST_VMLINUZ", "[loader][bzimage][real-kernel]") {
    const char* path = std::getenv("XOVER_TEST_VMLINUZ");
    if (path == nullptr || *path == '\0') {
        WARN("XOVER_TEST_VMLINUZ not set; skipping the real-kernel test (see tests/integration/bzimage_real.sh)");
        return;
    }
    constexpr std::uint64_t kMem = 256ull << 20;
    auto mem = std::make_unique<FakeGuestMemory>(kMem);
    LoadRequest r;
    r.kernel = path;
    r.cmdline = "console=ttyS0 earlyprintk=serial panic=-1";
    r.memory_bytes = kMem;

    const BootImage boot = load_kernel(*mem, r);
    const auto zp = mem->at<boot_params>(layout::kZeroPageAddr);
    INFO("protocol " << std::hex << zp.hdr.version << " pref_address " << zp.hdr.pref_address << " init_size "
                     << zp.hdr.init_size);
    CHECK(boot.mode == BootImage::Mode::Linux64);
    CHECK(zp.hdr.header == 0x53726448);
    CHECK(zp.hdr.version >= 0x020c);
    CHECK((zp.hdr.xloadflags & XLF_KERNEL_64));
    CHECK(zp.hdr.relocatable_kernel == 1);
    CHECK(boot.entry == zp.hdr.code32_start + 0x200ull);
    CHECK(boot.kernel_end >= zp.hdr.code32_start + zp.hdr.init_size);
    CHECK(zp.hdr.type_of_loader == 0xff);
    CHECK(zp.e820_entries == 3);
    // The payload of a bzImage begins with the decompressor's startup_32.
    CHECK(mem->bytes[zp.hdr.code32_start] != 0);
}
