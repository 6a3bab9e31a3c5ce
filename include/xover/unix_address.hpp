// A Unix socket's address from its path, for bind and connect (the broker's
// socket, the control API's). `what` names the socket in the error when
// the path does not fit sun_path.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "xover/error.hpp"

namespace xover {

inline sockaddr_un unix_address(const std::filesystem::path& path, const char* what) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string s = path.string();
    if (s.size() >= sizeof addr.sun_path) throw Error("{} path '{}' is too long", what, s);
    std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
    return addr;
}

}  // namespace xover
