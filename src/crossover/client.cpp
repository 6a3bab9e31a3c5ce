#include "xover/crossover/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "xover/crossover/broker.hpp"
#include "xover/vmm/layout.hpp"

namespace xover::crossover {

std::span<std::uint8_t> PeerGuestMemory::span(std::uint64_t gpa, std::uint64_t len) {
    if (len == 0) return {};
    if (rings_gpa_) {
        std::uint64_t at = rings_gpa_->load(std::memory_order_acquire);
        if (at && gpa >= at && gpa - at < rings_size_) {
            if (len > rings_size_ - (gpa - at)) return {};  // runs off the end of the area
            return {rings_ + (gpa - at), static_cast<std::size_t>(len)};
        }
    }
    std::optional<std::uint64_t> at = vmm::layout::ram_file_offset(gpa, len);
    if (!at) return {};  // in or across the 32-bit hole
    std::uint64_t offset = *at;
    if (offset > size_ || len > size_ - offset) return {};
    return {base_ + offset, static_cast<std::size_t>(len)};
}

namespace {
void signal_eventfd(const kvm::UniqueFd& fd) {
    if (!fd) return;
    std::uint64_t one = 1;
    // EAGAIN only when the counter would overflow: the wake-up is pending anyway.
    [[maybe_unused]] auto n = ::write(fd.get(), &one, sizeof one);
}
}  // namespace

void PeerLink::interrupt_peer() const { signal_eventfd(peer_irq); }
void PeerLink::interrupt_peer_tx() const { signal_eventfd(peer_tx_irq); }
void PeerLink::ring_peer_doorbell() const { signal_eventfd(peer_doorbell); }

std::shared_ptr<PeerLink> PeerLink::from_message(LinkUp m) {
    if (m.producer_slot >= nic::kMaxProducerSlots || m.peer_producer_slot >= nic::kMaxProducerSlots)
        throw Error("link {}: counter slot {} or {} out of range", m.link_id, m.producer_slot, m.peer_producer_slot);
    if (!m.peer_state) throw Error("link {}: the broker sent no state page", m.link_id);
    // A window link shares no RAM (least sharing): never map it, whatever
    // a broker sent; a copy link cannot work without it.
    if (m.mode == LinkMode::Window) {
        m.peer_ram.reset();
        m.peer_ram_size = 0;
        if (!m.peer_window || !m.peer_window_size || !m.peer_rings)
            throw Error("link {}: a window link without the peer's window and ring area", m.link_id);
    } else if (!m.peer_ram) {
        throw Error("link {}: a copy link without the peer's RAM", m.link_id);
    }
    auto link = std::make_shared<PeerLink>();
    link->id = m.link_id;
    link->local_nic = m.local_nic;
    link->peer_vm = std::move(m.peer_vm);
    link->peer_nic = m.peer_nic;
    link->peer_mac = m.peer_mac;
    link->peer_model = std::move(m.peer_model);
    link->mode = m.mode;
    link->automatic = m.automatic;
    link->producer_slot = m.producer_slot;
    link->peer_producer_slot = m.peer_producer_slot;
    if (m.peer_ram) link->peer_ram = SharedMapping(m.peer_ram.get(), m.peer_ram_size);
    link->state_page = SharedMapping(m.peer_state.get(), nic::kSharedStateSize);
    if (m.peer_window && m.peer_window_size) {
        link->peer_window = SharedMapping(m.peer_window.get(), m.peer_window_size);
        link->peer_window_fd = std::move(m.peer_window);
    }
    link->peer_memory = PeerGuestMemory(link->peer_ram.data(), link->peer_ram.size());
    if (m.peer_rings) {
        if (m.peer_rings_size == 0 || m.peer_rings_size > kMaxRingAreaSize)
            throw Error("link {}: a ring area of {} bytes", m.link_id, m.peer_rings_size);
        link->peer_rings = SharedMapping(m.peer_rings.get(), m.peer_rings_size);
        link->peer_memory.set_ring_area(link->peer_rings.data(), link->peer_rings.size(),
                                        &link->peer_state().ring_area_gpa);
    }
    link->peer_irq = std::move(m.peer_irq);
    link->peer_doorbell = std::move(m.peer_doorbell);
    link->peer_tx_irq = std::move(m.peer_tx_irq);
    if (!link->peer_state().valid()) throw Error("link {}: the peer's state page is not initialised", link->id);
    return link;  // memfds close here; the mappings keep the memory alive
}

BrokerClient BrokerClient::connect(const std::filesystem::path& path, bool start_if_missing) {
    kvm::UniqueFd fd = start_if_missing ? ensure_broker(path) : connect_broker(path, true);
    if (!fd) throw Error("no crossover broker is listening on {} (start one with `xover broker`)", path.string());
    return BrokerClient(std::move(fd));
}

BrokerClient::BrokerClient(kvm::UniqueFd socket) : socket_(std::move(socket)) {}

void BrokerClient::register_vm(Register registration, LinkHandler& links, std::chrono::milliseconds timeout) {
    const std::string name = registration.vm_name;
    if (!send_message(socket_.get(), Message(std::move(registration))))
        throw Error("VM '{}': the crossover broker closed the connection", name);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{socket_.get(), POLLIN, 0};
        int n;
        do {
            n = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
        } while (n < 0 && errno == EINTR);
        if (n <= 0) throw Error("VM '{}': the crossover broker did not answer within {} ms", name, timeout.count());
        Received r;
        try {
            r = receive_message(socket_.get());
        } catch (const ProtocolError& e) {
            throw Error("VM '{}': bad answer from the crossover broker: {}", name, e.what());
        }
        if (r.status != Received::Status::Message)
            throw Error("VM '{}': the crossover broker closed the connection", name);
        if (auto* err = std::get_if<RegisterError>(&*r.message))
            throw Error("VM '{}' refused by the crossover broker: {}", name, err->reason);
        if (std::holds_alternative<RegisterOk>(*r.message)) return;
        // The links this registration made come first (broker_state.cpp).
        if (!dispatch_link(*r.message, links))
            throw Error("VM '{}': unexpected {} from the crossover broker", name, message_name(*r.message));
    }
}

bool BrokerClient::send_registration(Register registration) {
    return send_message(socket_.get(), Message(std::move(registration)));
}

bool BrokerClient::on_readable(LinkHandler& handler) {
    if (lost_) return false;
    for (;;) {
        Received r;
        try {
            r = receive_message(socket_.get(), true);
        } catch (const ProtocolError& e) {
            spdlog::error("crossover: malformed message from the broker ({}); disconnecting", e.what());
            r.status = Received::Status::Closed;
        }
        if (r.status == Received::Status::WouldBlock) return true;
        if (r.status == Received::Status::Closed) {
            lost_ = true;
            handler.broker_lost();
            return false;
        }
        if (std::holds_alternative<RegisterOk>(*r.message)) {
            handler.registered();
            continue;
        }
        if (auto* refused = std::get_if<RegisterError>(&*r.message)) {
            lost_ = true;
            handler.registration_refused(refused->reason);
            return false;
        }
        if (!dispatch_link(*r.message, handler))
            spdlog::warn("crossover: ignoring unexpected {} from the broker", message_name(*r.message));
    }
}

bool BrokerClient::dispatch_link(Message& message, LinkHandler& handler) {
    if (auto* up = std::get_if<LinkUp>(&message)) {
        std::uint64_t id = up->link_id;
        std::shared_ptr<PeerLink> link;
        try {
            link = PeerLink::from_message(std::move(*up));
        } catch (const Error& e) {
            spdlog::error("crossover: cannot set up link {}: {}", id, e.what());
            return true;
        }
        spdlog::info("crossover: link {} up: NIC {} <-> {}#{} {} ({})", link->id, link->local_nic, link->peer_vm,
                     link->peer_nic, link->peer_mac.to_string(), to_string(link->mode));
        handler.link_up(std::move(link));
        return true;
    }
    if (auto* down = std::get_if<LinkDown>(&message)) {
        spdlog::info("crossover: link {} down ({})", down->link_id, down->reason);
        handler.link_down(down->link_id, down->local_nic);
        return true;
    }
    if (auto* up = std::get_if<SoundLinkUp>(&message)) {
        if (!up->peer_inbox) {
            spdlog::error("crossover: sound card {}: the broker sent a link to {}.snd{} without its inbox; ignored",
                          up->local_card, up->peer_vm, up->peer_card);
            return true;
        }
        spdlog::info("crossover: sound card {} linked to {}.snd{}", up->local_card, up->peer_vm, up->peer_card);
        handler.sound_link_up(std::move(*up));
        return true;
    }
    if (auto* down = std::get_if<SoundLinkDown>(&message)) {
        if (down->refused)  // the card's owner warns about it
            spdlog::info("crossover: sound card {}: no link with {}: {}", down->local_card, down->peer_vm, down->reason);
        else
            spdlog::info("crossover: sound card {}: link with {} down ({})", down->local_card, down->peer_vm,
                         down->reason);
        handler.sound_link_down(*down);
        return true;
    }
    return false;
}

// Safe from any thread (a vCPU thread included): one non-blocking sendmsg,
// atomic per packet on a SOCK_SEQPACKET socket; touches no client state.
// So is send_set_peers.
bool BrokerClient::report_frame_seen(std::uint32_t nic, const net::MacAddress& dst) {
    return send_message(socket_.get(), FrameSeen{nic, dst});
}

bool BrokerClient::send_set_peers(std::uint32_t nic, std::vector<std::string> peers, bool auto_peer) {
    return send_message(socket_.get(), SetPeers{nic, std::move(peers), auto_peer});
}

kvm::UniqueFd dup_for_broker(int fd) {
    kvm::UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!copy) throw system_error("dup fd for the broker");
    return copy;
}

NicRegistration dup_for_broker(const NicRegistration& reg) {
    auto dup = [](const kvm::UniqueFd& fd) { return fd ? dup_for_broker(fd.get()) : kvm::UniqueFd{}; };
    NicRegistration copy;
    copy.index = reg.index;
    copy.mac = reg.mac;
    copy.model = reg.model;
    copy.peers = reg.peers;
    copy.auto_peer = reg.auto_peer;
    copy.mode = reg.mode;
    copy.ram_size = reg.ram_size;
    copy.window_size = reg.window_size;
    copy.rings_size = reg.rings_size;
    copy.ram = dup(reg.ram);
    copy.state = dup(reg.state);
    copy.window = dup(reg.window);
    copy.rings = dup(reg.rings);
    copy.irq = dup(reg.irq);
    copy.doorbell = dup(reg.doorbell);
    copy.tx_irq = dup(reg.tx_irq);
    return copy;
}

SoundRegistration dup_for_broker(const SoundRegistration& reg) {
    SoundRegistration copy;
    copy.index = reg.index;
    copy.peer = reg.peer;
    copy.rate = reg.rate;
    copy.channels = reg.channels;
    copy.inbox = reg.inbox ? dup_for_broker(reg.inbox.get()) : kvm::UniqueFd{};
    return copy;
}

}  // namespace xover::crossover
