// A NIC backend that outlives the devices sending through it: the
// vhost-user back-end opens its NIC's backend (a tap, a socket) once,
// before its sandbox, and each front-end session's device attaches to it
// while it lives. Frames that arrive with no device attached are dropped
// and counted, as a NIC with no driver loaded drops them. The broker's
// switch port is the exception: it is made anew for each session (a Unix
// socket the sandbox allows), so it follows the broker across restarts
// the way the session's registration does. All on the event loop's thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <functional>
#include <memory>
#include <span>

#include "xover/net/backend.hpp"
#include "xover/net/backend_spec.hpp"
#include "xover/net/mac_address.hpp"
#include "xover/vmm/event_loop.hpp"

namespace xover::devices {

class LastingBackend final : public net::FrameReceiver {
public:
    // Starts `inner` on `loop`, delivering here.
    LastingBackend(std::unique_ptr<net::Backend> inner, vmm::EventLoop& loop);
    // Makes a fresh backend for each attach() with `make_per_session`.
    explicit LastingBackend(std::function<std::unique_ptr<net::Backend>()> make_per_session);
    ~LastingBackend() override;
    LastingBackend(const LastingBackend&) = delete;
    LastingBackend& operator=(const LastingBackend&) = delete;

    // The backend one device sends through: its start() attaches the
    // device (one at a time), destroying it detaches.
    std::unique_ptr<net::Backend> attach();

    bool deliver(std::span<const std::uint8_t> frame) override;
    void link_state_changed() override;

private:
    class Attachment;
    std::unique_ptr<net::Backend> inner_;
    std::function<std::unique_ptr<net::Backend>()> make_per_session_;
    net::FrameReceiver* device_ = nullptr;
    std::function<void()> device_tx_ready_;
    std::uint64_t dropped_no_device_ = 0;
};

// NIC `nic`'s backend of VM `vm_name` (its MAC `mac`; `broker`: the broker
// socket, for the switch port), started on `loop`. Throws xover::Error.
std::unique_ptr<LastingBackend> make_lasting_backend(const net::BackendSpec& spec, const std::string& vm_name,
                                                     const net::MacAddress& mac, const std::filesystem::path& broker,
                                                     vmm::EventLoop& loop);

}  // namespace xover::devices
