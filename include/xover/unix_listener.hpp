// A listening Unix stream socket at a path (the control API's, the
// vhost-user back-end's): mode 0600 from the start, so nobody else may
// connect, not even between bind and chmod. A socket file there that
// nobody listens on is left over from a process that died and is
// replaced; one that answers belongs to a running process and is refused.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "xover/error.hpp"
#include "xover/kvm/unique_fd.hpp"
#include "xover/unix_address.hpp"

namespace xover {

// `what` names the socket in errors ("API socket").
inline kvm::UniqueFd listen_unix_stream(const std::filesystem::path& path, const char* what, int backlog = 16) {
    const sockaddr_un addr = unix_address(path, what);
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw Error("{} path {} exists and is not a socket", what, path.string());
        kvm::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!probe) throw system_error("socket(AF_UNIX)");
        if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
            throw Error("{} {} is in use by another process", what, path.string());
        ::unlink(path.c_str());
    }
    kvm::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw system_error("socket(AF_UNIX)");
    mode_t old_mask = ::umask(0177);
    int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ::umask(old_mask);
    if (rc != 0 || ::listen(fd.get(), backlog) != 0) throw Error("{} {}: {}", what, path.string(), std::strerror(errno));
    return fd;
}

}  // namespace xover
