#include "xover/kvm/event_fd.hpp"

#include <unistd.h>

#include "xover/error.hpp"

namespace xover::kvm {

EventFd EventFd::create(int flags) {
    int fd = ::eventfd(0, flags | EFD_CLOEXEC);
    if (fd < 0) throw system_error("eventfd");
    return EventFd(UniqueFd(fd));
}

bool EventFd::signal(std::uint64_t value) const noexcept {
    return ::write(fd_.get(), &value, sizeof value) == sizeof value;
}

std::uint64_t EventFd::drain() const noexcept {
    std::uint64_t value = 0;
    if (::read(fd_.get(), &value, sizeof value) != sizeof value) return 0;
    return value;
}

}  // namespace xover::kvm
