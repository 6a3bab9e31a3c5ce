// Memfds that cross process boundaries, and their mappings.
//
// Every memfd handed to the broker must be sealed against shrinking
// (F_SEAL_SHRINK): a peer maps it MAP_SHARED, and a memfd that could be
// truncated under the peer's mapping would make the peer SIGBUS. The broker
// refuses registrations whose memfds are not sealed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "xover/nic/shared_nic_state.hpp"
#include "xover/kvm/unique_fd.hpp"

namespace xover::crossover {

// memfd_create + ftruncate + seals (shrink, grow, seal). Throws xover::Error.
kvm::UniqueFd create_sealed_memfd(const std::string& name, std::uint64_t size);

// Size of a memfd (fstat), and whether it is sealed against shrinking.
std::uint64_t memfd_size(int fd);
bool memfd_shrink_sealed(int fd);
// Throws xover::Error unless memfd `fd` (another process's) holds at least
// `size` bytes and is sealed against shrinking: mapped, it can then be
// neither shorter than we think nor cut away under us (SIGBUS).
void require_shareable_memfd(int fd, std::uint64_t size);

// A MAP_SHARED read-write mapping of a whole memfd (or its first `size`
// bytes); munmap on destruction. Checks that the memfd is at least `size`
// bytes long and sealed against shrinking, so a lying peer can make us
// neither map past its end nor fault on memory it cut away later.
class SharedMapping {
public:
    SharedMapping() = default;
    SharedMapping(int fd, std::uint64_t size);  // throws xover::Error
    ~SharedMapping() { reset(); }
    SharedMapping(SharedMapping&& other) noexcept;
    SharedMapping& operator=(SharedMapping&& other) noexcept;
    SharedMapping(const SharedMapping&) = delete;
    SharedMapping& operator=(const SharedMapping&) = delete;

    std::uint8_t* data() const { return data_; }
    std::uint64_t size() const { return size_; }
    std::span<std::uint8_t> bytes() const { return {data_, static_cast<std::size_t>(size_)}; }
    explicit operator bool() const { return data_ != nullptr; }
    void reset();

private:
    std::uint8_t* data_ = nullptr;
    std::uint64_t size_ = 0;
};

// A NIC's shared state page: the memfd (to register with the broker) and
// the owner's mapping, with the state initialised.
class SharedStatePage {
public:
    // Creates and initialises a new page (the owner's side).
    static SharedStatePage create(const std::string& name, std::uint32_t model_id);
    // Maps an existing page received from elsewhere (the peer's or broker's side).
    static SharedStatePage map(int fd);

    nic::SharedNicState& state() const { return *reinterpret_cast<nic::SharedNicState*>(mapping_.data()); }
    int fd() const { return fd_.get(); }
    // A duplicate of the memfd, e.g. for sending.
    kvm::UniqueFd dup_fd() const;

private:
    kvm::UniqueFd fd_;
    SharedMapping mapping_;
};

}  // namespace xover::crossover
