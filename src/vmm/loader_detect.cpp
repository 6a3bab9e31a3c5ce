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

[[noreturn]] void unknown_format(const std::filesystem::path& kernel) {
    throw Error("kernel {}: not an ELF file nor a Linux bzImage", kernel.string());
}

}  // namespace

BootImage load_kernel(GuestMemory& memory, const LoadRequest& request) {
    using namespace loader_detail;
    if (request.memory_bytes == 0) throw Error("kernel {}: guest memory size is 0", request.kernel.string());
    auto image = read_image(request.kernel, "kernel", request.memory_bytes);
    if (is_elf(image)) return load_pvh_elf(memory, request, image);
    if (is_bzimage(image)) return load_bzimage(memory, request, image);
    unknown_format(request.kernel);
}

void check_kernel_format(const std::filesystem::path& kernel, std::uint64_t memory_bytes) {
    auto image = loader_detail::read_image(kernel, "kernel", memory_bytes);
    if (!is_elf(image) && !is_bzimage(image)) unknown_format(kernel);
}

}  // namespace xover::vmm
