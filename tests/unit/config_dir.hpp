// Helpers for the config tests: a scratch directory with a fake kernel in
// it to write vm.toml and up.toml files next to, and the config (or the
// error) that a file or a set of flags resolves to.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "error_of.hpp"
#include "temp_dir.hpp"
#include "xover/vmm/config_parser.hpp"

namespace xover::test {

struct ConfigDir {
    TempDir tmp;
    std::filesystem::path dir = tmp.path;
    std::filesystem::path kernel = write("kernel.elf", "\x7f" "ELF");

    explicit ConfigDir(const std::string& prefix = "xover-config-test") : tmp(prefix) {}

    std::filesystem::path write(const std::string& name, const std::string& text) const {
        const std::filesystem::path p = dir / name;
        std::ofstream(p) << text;
        return p;
    }
    // A vm.toml whose first line names the kernel, followed by `rest`.
    std::filesystem::path vm_toml(const std::string& rest) const {
        return write("vm.toml", "kernel = \"kernel.elf\"\n" + rest);
    }
    // An `xover up` file, and the error loading it gives.
    std::filesystem::path up_toml(const std::string& text) const { return write("up.toml", text); }
    std::string up_error(const std::string& text) const {
        const auto p = up_toml(text);
        return error_of([&] { vmm::load_up_file(p); });
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }
};

// `xover run --config FILE`'s config, and its error.
inline vmm::VmConfig run_file(const std::filesystem::path& config) {
    vmm::RunOptions opts;
    opts.config = config;
    return vmm::resolve_run_config(opts);
}

inline std::string run_error(const std::filesystem::path& config) {
    return error_of([&] { run_file(config); });
}

// The error resolve_run_config() gives for a kernel and what `change` sets.
template <typename F>
std::string flag_error(const ConfigDir& d, F&& change) {
    vmm::RunOptions o;
    o.kernel = d.kernel.string();
    change(o);
    return error_of([&] { vmm::resolve_run_config(o); });
}

}  // namespace xover::test
