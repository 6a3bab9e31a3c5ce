#include "xover/crossover/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <new>
#include <utility>

#include "xover/error.hpp"

namespace xover::crossover {

kvm::UniqueFd create_sealed_memfd(const std::string& name, std::uint64_t size) {
    kvm::UniqueFd fd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) throw system_error("memfd_create " + name);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw system_error("ftruncate memfd " + name);
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        throw system_error("sealing memfd " + name);
    return fd;
}

std::uint64_t memfd_size(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw system_error("fstat memfd");
    return static_cast<std::uint64_t>(st.st_size);
}

bool memfd_shrink_sealed(int fd) {
    int seals = ::fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
}

void require_shareable_memfd(int fd, std::uint64_t size) {
    std::uint64_t actual = memfd_size(fd);
    if (actual < size) throw Error("shared memory fd is {} bytes, {} expected", actual, size);
    if (!memfd_shrink_sealed(fd)) throw Error("shared memory fd is not sealed against shrinking (F_SEAL_SHRINK)");
}

SharedMapping::SharedMapping(int fd, std::uint64_t size) {
    if (size == 0) throw Error("cannot map an empty shared memory region");
    require_shareable_memfd(fd, size);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw system_error("mmap shared memory");
    data_ = static_cast<std::uint8_t*>(p);
    size_ = size;
}

SharedMapping::SharedMapping(SharedMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SharedMapping& SharedMapping::operator=(SharedMapping&& other) noexcept {
    if (this != &other) {
        reset();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void SharedMapping::reset() {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
}

SharedStatePage SharedStatePage::create(const std::string& name, std::uint32_t model_id) {
    SharedStatePage page;
    page.fd_ = create_sealed_memfd(name, nic::kSharedStateSize);
    page.mapping_ = SharedMapping(page.fd_.get(), nic::kSharedStateSize);
    // Begin the atomics' lifetime in this process; other processes see the
    // same bytes through their own mappings.
    auto* state = new (page.mapping_.data()) nic::SharedNicState();
    state->initialize(model_id);
    return page;
}

SharedStatePage SharedStatePage::map(int fd) {
    SharedStatePage page;
    page.fd_ = kvm::UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!page.fd_) throw system_error("dup shared state fd");
    page.mapping_ = SharedMapping(page.fd_.get(), nic::kSharedStateSize);
    return page;
}

kvm::UniqueFd SharedStatePage::dup_fd() const {
    kvm::UniqueFd fd(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw system_error("dup shared state fd");
    return fd;
}

}  // namespace xover::crossover
