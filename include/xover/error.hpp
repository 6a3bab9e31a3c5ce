// Setup-time errors: one exception type carrying a human-readable message
// that already names the flag, file, key or syscall involved.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace xover {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;

    template <typename... Args>
    explicit Error(fmt::format_string<Args...> format, Args&&... args)
        : std::runtime_error(fmt::format(format, std::forward<Args>(args)...)) {}
};

// Builds an Error for a failed syscall: "<what>: <strerror(errno)>".
inline Error system_error(const std::string& what, int err = errno) {
    return Error(fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace xover
