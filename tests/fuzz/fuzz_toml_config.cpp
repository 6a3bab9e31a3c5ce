// Fuzz target: a TOML config file as `xover run --config` and `xover up`
// read it (toml++ parse, then every key's checks, defaults and the cross-VM
// rules of an up file). Any file must load or be refused with xover::Error
// (one line naming the file, key and value); nothing else may escape.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "xover/error.hpp"
#include "xover/vmm/config_parser.hpp"

using namespace xover;

namespace {

// The input as a file the parsers can open by path: one memfd, rewritten
// each run (no disk I/O, nothing left behind).
std::filesystem::path write_config(const std::uint8_t* data, std::size_t size) {
    static const int fd = ::memfd_create("fuzz.toml", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != ssize_t(size)) std::abort();
    return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = write_config(data, size);
    try {
        vmm::RunOptions run;
        run.config = path;
        vmm::resolve_run_config(run);
    } catch (const Error&) {
    }
    try {
        vmm::read_up_file(path);
    } catch (const Error&) {
    }
    return 0;
}
