// load_kernel(): reads the kernel file and hands it to the loader for its
// format. A bzImage is recognised by "HdrS" at 0x202 (boot protocol), an ELF
// by its magic; anything else is refused with the file named.
#include <algorithm>
#include <cstring>

#include "loader_internal.hpp"
#include "xover/error.hpp"

namespace xover::vmm {

namespace {

bool is_elf(std::span<const std::uint8_t> image) {
    return image.size() >= 4 && std::memcmp(image.data(), "\x7f" "ELF", 4) == 0;
}

bool is_bzimage(std::span<const std::uint8_t> image) {
    return image.size() >= 0x206 && std::memcmp(image.data() + 0x202, "HdrS", 4) == 0;
}

}  // namespace

BootImage load_kernel(GuestMemory& memory, const LoadRequest& request) {
    using namespace loader_detail;
    if (request.memory_bytes == 0) throw Error("kernel {}: guest memory size is 0", request.kernel.string());
    auto image = read_image(request.kernel, "kernel", request.memory_bytes);
    if (is_elf(image)) return load_pvh_elf(memory, request, image);
    if (is_bzimage(image)) return load_bzimage(memory, request, image);
    throw Error("kernel {}: not an ELF file nor a Linux bzImage", request.kernel.string());
}

}  // namespace xover::vmm
