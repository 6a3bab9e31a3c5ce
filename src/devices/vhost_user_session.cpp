#include "xover/devices/vhost_user_session.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "vhost_user_nic.hpp"
#include "vhost_user_sound.hpp"
#include "xover/error.hpp"
#include "xover/virtio_net/virtio_net.hpp"
#include "xover/virtio_net/virtio_spec.hpp"
#include "xover/virtio_net/virtqueue.hpp"
#include "xover/virtio_snd/virtio_snd.hpp"

namespace xover::devices {

namespace vu = vhost_user;
using virtio_net::VirtioNet;

namespace {

constexpr std::uint64_t kProtocolFeaturesBit = std::uint64_t{1} << vu::kFeatureProtocolFeatures;

// Bytes of each part of a split ring of `num` descriptors (virtio 1.2 §2.7).
std::uint64_t desc_bytes(std::uint32_t num) { return 16ull * num; }
std::uint64_t avail_bytes(std::uint32_t num) { return 6 + 2ull * num; }
std::uint64_t used_bytes(std::uint32_t num) { return 6 + 8ull * num; }

// Whether two fds are one file (the RAM a crossover registration shares).
bool same_file(int a, int b) {
    struct stat sa{}, sb{};
    return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace

std::uint64_t VhostUserSession::offered_features() const {
    return (config_.sound ? virtio_snd::VirtioSnd::kTransportFeatures : VirtioNet::kOfferedFeatures) |
           kProtocolFeaturesBit;
}

std::uint64_t VhostUserSession::offered_protocol_features() const {
    // A sound card's configuration is only read through GET_CONFIG (QEMU's
    // vhost-user-snd asks for it); a NIC's lives in QEMU's own device.
    return std::uint64_t{1} << vu::kProtocolFeatureReplyAck |
           (config_.sound ? std::uint64_t{1} << vu::kProtocolFeatureConfig : 0);
}

VhostUserSession::VhostUserSession(const VhostUserConfig& config, vmm::EventLoop& loop, LastingBackend& backend,
                                   kvm::UniqueFd socket, std::function<void(const std::string&)> ended)
    : config_(config),
      loop_(loop),
      backend_(backend),
      socket_(std::move(socket)),
      ended_(std::move(ended)),
      rings_(config.sound ? virtio_snd::VirtioSnd::kQueueCount : ServedNic::kRings) {
    loop_.watch(socket_.get(), vmm::EventLoop::Interest::Readable, [this] { on_readable(); });
}

VhostUserSession::~VhostUserSession() {
    stop_device();
    for (auto& r : rings_)
        if (r.kick) loop_.unwatch(r.kick.get(), vmm::EventLoop::Interest::Readable);
    if (!over_) loop_.unwatch(socket_.get(), vmm::EventLoop::Interest::Readable);
}

void VhostUserSession::on_readable() {
    if (over_) return;
    try {
        std::optional<vu::Message> m = vu::read_message(socket_.get());
        if (!m) return end("");
        handle(*m);
    } catch (const std::exception& e) {
        end(e.what());
    }
}

void VhostUserSession::catch_up() {
    for (int i = 0; i < 64 && !over_; ++i) {  // bounded: a chatty front-end waits for the loop
        pollfd p{socket_.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) != 1) return;
        on_readable();
    }
}

void VhostUserSession::end(const std::string& reason) {
    if (over_) return;
    over_ = true;
    loop_.unwatch(socket_.get(), vmm::EventLoop::Interest::Readable);
    stop_device();
    // The owner destroys the session: not from inside its own callback.
    loop_.post([ended = ended_, reason] { ended(reason); });
}

VhostUserSession::Ring& VhostUserSession::ring(std::uint32_t index, std::uint32_t request) {
    if (index >= rings_.size())
        throw vu::ProtocolError("{}: ring {} does not exist ({}: rings 0 to {})", vu::fmt_request(request), index,
                                config_.sound ? "virtio-snd" : "virtio-net, one queue pair", rings_.size() - 1);
    return rings_[index];
}

void VhostUserSession::ack(const vu::Message& m) {
    if ((protocol_features_ >> vu::kProtocolFeatureReplyAck & 1) && m.need_reply())
        vu::send_reply_u64(socket_.get(), m.request, 0);
}

void VhostUserSession::handle(vu::Message& m) {
    const std::string name = vu::fmt_request(m.request);
    switch (vu::Request(m.request)) {
    case vu::Request::GetFeatures:
        vu::send_reply_u64(socket_.get(), m.request, offered_features());
        return;
    case vu::Request::SetFeatures: {
        std::uint64_t features = vu::decode_u64(m);
        if (features & ~offered_features())
            throw vu::ProtocolError("{}: {:#x} acks features never offered ({:#x})", name, features,
                                    features & ~offered_features());
        if (running() && features != features_) stop_device();
        features_ = features;
        features_set_ = true;
        break;
    }
    case vu::Request::SetOwner: break;
    case vu::Request::ResetOwner:
        stop_device();
        for (auto& r : rings_) {
            if (r.kick) loop_.unwatch(r.kick.get(), vmm::EventLoop::Interest::Readable);
            r = Ring{};
        }
        features_ = 0;
        features_set_ = false;
        break;
    case vu::Request::GetProtocolFeatures:
        vu::send_reply_u64(socket_.get(), m.request, offered_protocol_features());
        return;
    case vu::Request::SetProtocolFeatures: {
        std::uint64_t features = vu::decode_u64(m);
        if (features & ~offered_protocol_features())
            throw vu::ProtocolError("{}: {:#x} acks protocol features never offered", name, features);
        protocol_features_ = features;
        break;
    }
    case vu::Request::GetQueueNum:
        vu::send_reply_u64(socket_.get(), m.request, rings_.size());
        return;
    case vu::Request::GetConfig:
        if (!(protocol_features_ >> vu::kProtocolFeatureConfig & 1))
            throw vu::ProtocolError("{}: the CONFIG protocol feature was not negotiated", name);
        get_config(m);
        return;
    case vu::Request::SetMemTable: set_memory_table(m); break;
    case vu::Request::SetVringNum: {
        vu::VringState s = vu::decode_vring_state(m);
        Ring& r = ring(s.index, m.request);
        if (s.num == 0 || s.num > virtio_net::Virtqueue::kMaxSize || (s.num & (s.num - 1)) != 0)
            throw vu::ProtocolError("{}: ring {} size {} is not a power of two up to {}", name, s.index, s.num,
                                    virtio_net::Virtqueue::kMaxSize);
        if (r.started && running()) throw vu::ProtocolError("{}: ring {} is running", name, s.index);
        r.num = s.num;
        break;
    }
    case vu::Request::SetVringAddr: {
        vu::VringAddress a = vu::decode_vring_address(m);
        Ring& r = ring(a.index, m.request);
        if (a.flags & 1) throw vu::ProtocolError("{}: ring {} asks for dirty logging, which is not offered", name, a.index);
        if (r.started && running()) throw vu::ProtocolError("{}: ring {} is running", name, a.index);
        r.address = a;
        r.have_address = true;
        break;
    }
    case vu::Request::SetVringBase: {
        vu::VringState s = vu::decode_vring_state(m);
        Ring& r = ring(s.index, m.request);
        if (s.num > 0xffff) throw vu::ProtocolError("{}: ring {} base {} is not a split ring's index", name, s.index, s.num);
        if (r.started && running()) throw vu::ProtocolError("{}: ring {} is running", name, s.index);
        r.base = std::uint16_t(s.num);
        break;
    }
    case vu::Request::GetVringBase: {
        vu::VringState s = vu::decode_vring_state(m);
        Ring& r = ring(s.index, m.request);
        stop_device();  // each ring's base is now where the device left it
        r.started = false;
        vu::send_reply(socket_.get(), m.request, vu::encode_vring_state({s.index, r.base}));
        return;
    }
    case vu::Request::SetVringKick: {
        vu::VringFd v = vu::decode_vring_fd(m);
        Ring& r = ring(v.index, m.request);
        if (!v.fd) throw vu::ProtocolError("{}: ring {} without a kick fd (polling) is not supported", name, v.index);
        if (r.kick) loop_.unwatch(r.kick.get(), vmm::EventLoop::Interest::Readable);
        r.kick = std::move(v.fd);
        unsigned q = v.index;
        loop_.watch(r.kick.get(), vmm::EventLoop::Interest::Readable, [this, q] { kicked(q); });
        r.started = true;
        // Without protocol features a ring runs once it has a kick fd;
        // with them it waits for SET_VRING_ENABLE.
        if (!(features_ & kProtocolFeaturesBit)) r.enabled = true;
        break;
    }
    case vu::Request::SetVringCall: {
        vu::VringFd v = vu::decode_vring_fd(m);
        Ring& r = ring(v.index, m.request);
        if (device_) device_->call_changed(v.index, v.fd.get());  // before the old fd closes
        r.call = std::move(v.fd);
        break;
    }
    case vu::Request::SetVringErr:
        ring(vu::decode_vring_fd(m).index, m.request);  // never written: the fd just closes
        break;
    case vu::Request::SetVringEnable: {
        vu::VringState s = vu::decode_vring_state(m);
        ring(s.index, m.request).enabled = s.num != 0;
        break;
    }
    default:
        throw vu::ProtocolError("{}: not served by this back-end (it offered features {:#x}, protocol features {:#x})",
                                name, offered_features(), offered_protocol_features());
    }
    update_device();
    ack(m);
}

void VhostUserSession::get_config(const vu::Message& m) {
    vu::ConfigAccess access = vu::decode_config_access(m);
    std::vector<std::uint8_t> bytes(access.size, 0);
    virtio_snd::VirtioSnd::device_config(access.offset, bytes);
    vu::send_reply(socket_.get(), m.request, vu::encode_config(access, bytes));
}

void VhostUserSession::set_memory_table(vu::Message& m) {
    std::vector<vu::MemoryRegion> regions = vu::decode_memory_table(m);
    vu::MemoryTable table(regions, std::move(m.fds));
    if (!running()) {
        memory_ = std::move(table);
        return;
    }
    // A running device keeps running when the RAM its peers map is the
    // same file: the table is swapped under the device and the rings are
    // translated again. Otherwise it restarts on the new table (its links
    // go down and come back with the new RAM).
    std::optional<vmm::RamFile> old_ram = memory_.ram_file(), new_ram = table.ram_file();
    bool same_ram = old_ram && new_ram && old_ram->size == new_ram->size && same_file(old_ram->fd, new_ram->fd);
    // (A sound card shares no guest RAM: its cable is its own.)
    if (config_.sound || config_.nic.crossover.empty() || same_ram) {
        device_->replace_memory([&] { memory_ = std::move(table); });
        return;
    }
    stop_device();
    memory_ = std::move(table);
}

void VhostUserSession::kicked(unsigned q) {
    eventfd_t value;
    (void)::eventfd_read(rings_[q].kick.get(), &value);
    if (device_) device_->kick(q);
}

void VhostUserSession::update_device() {
    bool ready = features_set_ && !memory_.empty();
    for (const Ring& r : rings_) ready = ready && r.num && r.have_address && r.kick && r.started && r.enabled;
    if (ready && !device_) start_device();
    if (!ready && device_) stop_device();
}

void VhostUserSession::start_device() {
    if (!(features_ >> virtio_net::spec::kFeatureVersion1 & 1))
        throw Error("the front-end did not negotiate VIRTIO_F_VERSION_1 (a legacy driver?); the back-end serves "
                    "modern virtio only (QEMU: virtio-net-pci,disable-legacy=on)");
    if (!config_.sound && !config_.nic.crossover.empty() && !memory_.ram_file())
        throw Error("the front-end's guest RAM cannot be shared with crossover peers: {} (QEMU: -object "
                    "memory-backend-memfd,id=mem,size=SIZE,share=on -machine memory-backend=mem, with at most 3 GiB "
                    "below 4 GiB)",
                    memory_.not_shareable_reason());
    std::vector<ServedRing> rings(rings_.size());
    for (unsigned q = 0; q < rings_.size(); ++q) {
        const Ring& r = rings_[q];
        auto translate = [&](std::uint64_t uva, std::uint64_t bytes, const char* part) {
            std::optional<std::uint64_t> gpa = memory_.to_guest_physical(uva, bytes);
            if (!gpa)
                throw vu::ProtocolError("SET_VRING_ADDR: ring {}'s {} ({:#x}, {} bytes) lies outside the memory table",
                                        q, part, uva, bytes);
            return *gpa;
        };
        rings[q] = ServedRing{.size = std::uint16_t(r.num),
                                   .desc = translate(r.address.desc_user_addr, desc_bytes(r.num), "descriptor table"),
                                   .avail = translate(r.address.avail_user_addr, avail_bytes(r.num), "available ring"),
                                   .used = translate(r.address.used_user_addr, used_bytes(r.num), "used ring"),
                                   .base = r.base,
                                   .call = r.call.get()};
    }
    const std::uint64_t features = features_ & ~kProtocolFeaturesBit;
    if (config_.sound)
        device_ = std::make_unique<ServedSound>(config_, loop_, memory_, features, rings);
    else
        device_ = std::make_unique<ServedNic>(config_, loop_, memory_, backend_, features, rings);
    spdlog::info("vhost-user: {}: device started (features {:#x})", config_.vm_name, features_);
    // Kicks that came before the device ran are not lost.
    for (unsigned q = 0; q < rings_.size(); ++q) device_->kick(q);
}

void VhostUserSession::stop_device() {
    if (!device_) return;
    if (config_.print_stats) device_->print_stats(stderr, config_.all_stats);
    device_.reset();
    // Where each ring continues (GET_VRING_BASE, or a restart): every chain
    // the device took is used by now, so that is the used index (a frame
    // a peer still had in flight went with the link, as on a reset).
    for (unsigned q = 0; q < rings_.size(); ++q) rings_[q].base = used_index(q);
    spdlog::info("vhost-user: {}: device stopped", config_.vm_name);
}

std::uint16_t VhostUserSession::used_index(unsigned q) {
    const Ring& r = rings_[q];
    std::optional<std::uint64_t> used = memory_.to_guest_physical(r.address.used_user_addr, used_bytes(r.num));
    std::uint16_t index = r.base;
    if (used) memory_.read(*used + 2, index);
    return index;
}

}  // namespace xover::devices
