// Fuzz target: the kernel loaders (PVH ELF and bzImage, vmm/loader_*.cpp)
// on any kernel file, with any command line, with or without an initrd,
// into guest memory of a few sizes. Any image must load inside guest RAM
// or be refused with xover::Error naming the file; never a write outside
// guest memory, never a crash.
//
// Input: one options byte (initrd, memory size), one command-line length
// byte and the command line, then the kernel image.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "fake_guest_memory.hpp"
#include "mem_file.hpp"
#include "xover/error.hpp"
#include "xover/vmm/loader.hpp"

using namespace xover;

namespace {

constexpr std::size_t kMemoryBytes = 32 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Guest RAM is reused between runs (a loader only writes it); what
    // matters is that every write stays inside it.
    static FakeGuestMemory memory(kMemoryBytes);
    static MemFile kernel("fuzz-kernel"), initrd("fuzz-initrd");
    static const std::vector<std::uint8_t> initrd_bytes(5000, 0x5a);

    FuzzedDataProvider in(data, size);
    const auto options = in.ConsumeIntegral<std::uint8_t>();
    vmm::LoadRequest request;
    request.cmdline = in.ConsumeBytesAsString(in.ConsumeIntegral<std::uint8_t>());
    // RAM as large as the fake memory, smaller, or claimed larger than it
    // (then the fake memory's bounds check is what refuses a write).
    static constexpr std::uint64_t kSizes[] = {kMemoryBytes, 2 << 20, 1 << 20, 4ull << 30};
    request.memory_bytes = kSizes[options & 3];
    if (options & 4) request.initrd = initrd.write(initrd_bytes);
    request.kernel = kernel.write(in.ConsumeRemainingBytes<std::uint8_t>());
    try {
        vmm::load_kernel(memory, request);
    } catch (const Error&) {
    }
    return 0;
}
