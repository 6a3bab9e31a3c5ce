#include "xover/crossover/vm_agent.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "xover/crossover/broker.hpp"
#include "xover/crossover/link_planner.hpp"

namespace xover::crossover {

VmAgent::VmAgent()
    : backoff_(static_cast<std::uint32_t>(::getpid()) ^
               static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {}

void VmAgent::add_nic(NicRegistration reg, LinkedNic& nic) {
    std::lock_guard lock(mutex_);
    nics_[reg.index] = &nic;
    registrations_[reg.index] = std::move(reg);
}

void VmAgent::remove_nic(std::uint32_t index) {
    std::lock_guard lock(mutex_);
    nics_.erase(index);
    registrations_.erase(index);
    std::erase_if(live_links_, [index](const auto& entry) { return entry.first.second == index; });
    if (nics_.empty() && sounds_.empty()) disconnect_locked();
}

void VmAgent::add_sound(SoundRegistration reg, LinkedSound& card) {
    std::lock_guard lock(mutex_);
    sounds_[reg.index] = &card;
    sound_registrations_[reg.index] = std::move(reg);
}

void VmAgent::remove_sound(std::uint32_t index) {
    std::lock_guard lock(mutex_);
    sounds_.erase(index);
    sound_registrations_.erase(index);
    if (nics_.empty() && sounds_.empty()) disconnect_locked();
}

bool VmAgent::empty() const {
    std::lock_guard lock(mutex_);
    return registrations_.empty() && sound_registrations_.empty();
}

void VmAgent::disconnect_locked() {
    if (loop_) {
        if (client_) loop_->unwatch(client_->fd(), vmm::EventLoop::Interest::Readable);
        if (retry_timer_) loop_->unwatch(retry_timer_.get(), vmm::EventLoop::Interest::Readable);
    }
    client_.reset();
    retry_timer_.reset();
    loop_ = nullptr;
}

Register VmAgent::registration_locked() const {
    Register reg;
    reg.vm_name = vm_name_;
    reg.consent_group = consent_group_;
    for (const auto& [index, nic] : registrations_) reg.nics.push_back(dup_for_broker(nic));
    for (const auto& [index, sound] : sound_registrations_) reg.sounds.push_back(dup_for_broker(sound));
    reg.earlier_registrations = registrations_done_;
    for (const auto& [key, link] : live_links_) reg.links.push_back(link);
    return reg;
}

void VmAgent::register_vm(const std::string& vm_name, const std::string& consent_group,
                          const std::filesystem::path& broker, vmm::EventLoop& loop, bool start_broker) {
    std::unique_lock lock(mutex_);
    if (client_) throw Error("VM '{}': already registered with the crossover broker", vm_name);
    vm_name_ = vm_name;
    consent_group_ = consent_group;
    broker_ = broker;
    BrokerClient client = BrokerClient::connect(broker, start_broker);
    Register registration = registration_locked();
    // The links the registration makes arrive before its answer, and
    // link_up() takes the lock.
    lock.unlock();
    client.register_vm(std::move(registration), *this);
    lock.lock();
    client_.emplace(std::move(client));
    ++registrations_done_;
    loop_ = &loop;
    spdlog::info("crossover: VM '{}' registered with the broker at {}", vm_name, broker.string());
    // Made now, before the seccomp filter (which allows arming a timerfd,
    // not creating one): the retry timer for a broker that goes away.
    retry_timer_ = kvm::UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!retry_timer_) throw system_error("timerfd_create (the crossover broker's reconnect timer)");
    int timer = retry_timer_.get();
    loop.watch(timer, vmm::EventLoop::Interest::Readable, [this, timer] {
        std::uint64_t expirations;
        if (::read(timer, &expirations, sizeof expirations) > 0) reconnect();
    });
    watch_client_locked();
}

void VmAgent::watch_client_locked() {
    loop_->watch(client_->fd(), vmm::EventLoop::Interest::Readable, [this] {
        // The I/O thread is the only reader; the lock only guards against
        // a NIC going away meanwhile (NIC callbacks take their own locks).
        std::unique_lock lock(mutex_);
        if (!client_) return;
        BrokerClient* client = &*client_;
        lock.unlock();
        if (!client->on_readable(*this)) {
            lock.lock();
            connection_ended_locked();
        }
    });
}

void VmAgent::connection_ended_locked() {
    if (!loop_) return;  // the last NIC went away
    if (client_) loop_->unwatch(client_->fd(), vmm::EventLoop::Interest::Readable);
    client_.reset();
    if (connection_ == Connection::Registered)
        spdlog::warn("crossover: VM '{}': the broker went away; its {} link(s) keep carrying frames; it registers "
                     "again once a broker listens on {}",
                     vm_name_, live_links_.size(), broker_.string());
    connection_ = Connection::Reconnecting;
    arm_retry_locked();
}

void VmAgent::arm_retry_locked() {
    const auto delay = backoff_.next();
    itimerspec when{};
    when.it_value.tv_sec = delay.count() / 1000;
    when.it_value.tv_nsec = (delay.count() % 1000) * 1'000'000;
    if (::timerfd_settime(retry_timer_.get(), 0, &when, nullptr) != 0)
        spdlog::error("crossover: VM '{}': cannot arm the broker reconnect timer: {}", vm_name_, std::strerror(errno));
}

// On the I/O thread, when the retry timer fires. Never blocks: connect()
// on a Unix socket answers at once, and the broker's answer to Register
// arrives through the watched socket.
void VmAgent::reconnect() {
    std::lock_guard lock(mutex_);
    if (client_ || !loop_) return;
    auto problem = [&](const std::string& what) {
        if (what != last_problem_) spdlog::warn("crossover: VM '{}': registering again: {}", vm_name_, what);
        last_problem_ = what;
        arm_retry_locked();
    };
    try {
        kvm::UniqueFd fd = connect_broker(broker_, true);
        if (!fd) return arm_retry_locked();  // no broker yet: the usual case, not logged
        BrokerClient client(std::move(fd));
        if (!client.send_registration(registration_locked())) return problem("the broker closed the connection");
        client_.emplace(std::move(client));
    } catch (const Error& e) {
        return problem(e.what());
    }
    connection_ = Connection::Registering;
    watch_client_locked();
}

void VmAgent::registered() {
    std::lock_guard lock(mutex_);
    ++registrations_done_;
    connection_ = Connection::Registered;
    last_problem_.clear();
    backoff_.reset();
    // A warning like the loss it ends, so whoever saw one sees the other.
    spdlog::warn("crossover: VM '{}' registered again with the broker at {} (registration {}, {} live link(s) "
                 "reported)",
                 vm_name_, broker_.string(), registrations_done_, live_links_.size());
}

void VmAgent::registration_refused(const std::string& reason) {
    std::lock_guard lock(mutex_);
    // A restarted broker may refuse for a while (another VM took this
    // name's MAC meanwhile, say): keep trying, as for a missing broker.
    if (reason != last_problem_) spdlog::warn("crossover: VM '{}': the broker refused it: {}; retrying", vm_name_, reason);
    last_problem_ = reason;
}

void VmAgent::report_frame_seen(std::uint32_t nic, const net::MacAddress& dst) {
    // The lock keeps the connection from being replaced mid-send; frame
    // reports are rate-limited (PeerTable::should_report), so it is rare.
    std::lock_guard lock(mutex_);
    if (client_ && connection_ == Connection::Registered) client_->report_frame_seen(nic, dst);
}

bool VmAgent::set_peers(std::uint32_t nic, std::vector<std::string> peers, std::optional<bool> auto_peer) {
    if (auto error = check_peers(nic, peers)) throw Error("{}", *error);
    std::lock_guard lock(mutex_);
    auto reg = registrations_.find(nic);
    if (reg == registrations_.end()) return false;
    reg->second.peers = peers;
    if (auto_peer) reg->second.auto_peer = *auto_peer;
    // While a Register is on its way (Connection::Registering) this follows
    // it on the same socket; while reconnecting, the next Register carries it.
    if (client_ && !client_->send_set_peers(nic, std::move(peers), reg->second.auto_peer))
        spdlog::warn("crossover: VM '{}': NIC {}'s new peers did not reach the broker; it gets them when the VM "
                     "registers again",
                     vm_name_, nic);
    return true;
}

std::vector<std::uint32_t> VmAgent::nic_indices() const {
    std::lock_guard lock(mutex_);
    std::vector<std::uint32_t> out;
    for (const auto& [index, reg] : registrations_) out.push_back(index);
    return out;
}

std::vector<std::uint32_t> VmAgent::sound_indices() const {
    std::lock_guard lock(mutex_);
    std::vector<std::uint32_t> out;
    for (const auto& [index, reg] : sound_registrations_) out.push_back(index);
    return out;
}

std::vector<std::string> VmAgent::peers(std::uint32_t nic) const {
    std::lock_guard lock(mutex_);
    auto reg = registrations_.find(nic);
    return reg == registrations_.end() ? std::vector<std::string>{} : reg->second.peers;
}

bool VmAgent::auto_peer(std::uint32_t nic) const {
    std::lock_guard lock(mutex_);
    auto reg = registrations_.find(nic);
    return reg != registrations_.end() && reg->second.auto_peer;
}

std::vector<LiveLink> VmAgent::live_links() const {
    std::lock_guard lock(mutex_);
    std::vector<LiveLink> out;
    for (const auto& [key, link] : live_links_) out.push_back(link);
    return out;
}

LinkedNic* VmAgent::nic_for(std::uint32_t index) {
    std::lock_guard lock(mutex_);
    auto it = nics_.find(index);
    return it == nics_.end() ? nullptr : it->second;
}

void VmAgent::link_up(std::shared_ptr<PeerLink> link) {
    LinkedNic* nic = nic_for(link->local_nic);
    if (!nic) {
        spdlog::warn("crossover: link {} names NIC {}, which has no crossover here; ignored", link->id, link->local_nic);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        live_links_[{link->id, link->local_nic}] =
            LiveLink{link->id,   link->local_nic, link->peer_vm,       link->peer_nic,
                     link->mode, link->automatic, link->producer_slot, link->peer_producer_slot};
    }
    nic->crossover_link_up(std::move(link));
}

LinkedSound* VmAgent::sound_for(std::uint32_t index) {
    std::lock_guard lock(mutex_);
    auto it = sounds_.find(index);
    return it == sounds_.end() ? nullptr : it->second;
}

void VmAgent::sound_link_up(SoundLinkUp link) {
    LinkedSound* card = sound_for(link.local_card);
    if (!card) {
        spdlog::warn("crossover: a sound link to {}.snd{} names sound card {}, which has no crossover here; ignored",
                     link.peer_vm, link.peer_card, link.local_card);
        return;
    }
    card->sound_link_up(std::move(link));
}

void VmAgent::sound_link_down(const SoundLinkDown& down) {
    if (LinkedSound* card = sound_for(down.local_card)) card->sound_link_down(down);
}

void VmAgent::link_down(std::uint64_t link_id, std::uint32_t local_nic) {
    {
        std::lock_guard lock(mutex_);
        live_links_.erase({link_id, local_nic});
    }
    if (LinkedNic* nic = nic_for(local_nic)) nic->crossover_link_down(link_id);
}

}  // namespace xover::crossover
