// Transmit: walks descriptors from TDH to TDT, assembles frames (legacy,
// context and data descriptors, several descriptors per frame), applies
// checksum offloads, VLAN insertion and TCP segmentation, and hands each
// frame to send_frame(), the one place a frame leaves the NIC.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "checksum.hpp"
#include "xover/net/ethernet.hpp"
#include "xover/e1000/e1000.hpp"
#include "xover/e1000/window_tx_ledger.hpp"

namespace xover::e1000 {

namespace {
constexpr std::size_t kMinFrame = 60;  // without FCS
// The smallest segment payload we cut. The 8254x manual sets no floor we
// could find; Linux's TCP never asks for fewer than 8 bytes a segment. One
// byte would turn a 64 KiB TSO frame into 65,535 frames from a single
// descriptor: refused like any other bad context (TSCTFC, tx_bad_offload).
constexpr std::uint16_t kMinTsoMss = 8;
constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpPsh = 0x08;

}  // namespace

std::uint32_t E1000::tx_ring_size() const { return r(reg::TDLEN) / kDescriptorSize; }

void E1000::reset_tx_frame() { tx_frame_ = {}; }

void E1000::process_tx() {
    reclaim_handoff();
    process_tx_ring();
    if (!port_) return;
    port_->end_batch();  // peers see the batch, one interrupt each
    take_handoff_tx_interrupt();
    complete_window_slots();
}

// A TX handoff run whose frames were all moved ends at the next walk (the
// e1000 keeps no completion position: DD bits are per descriptor).
void E1000::reclaim_handoff() {
    std::uint32_t unused = 0;
    if (port_) port_->reclaim_tx(unused);
}

// Someone moved our parked frames and wrote DD; TXDW goes through our own
// delay timers (their descriptors asked for a report, usually with IDE).
void E1000::take_handoff_tx_interrupt() {
    if (port_ && port_->take_tx_interrupt()) signal_tx_written_back(true);
}

// Window mode: a legacy single-descriptor frame whose buffer the port can
// hand to the peer in place (no copy). True: placed (completion deferred).
// busy: the peer's ring is full, stop the walk here.
bool E1000::try_window(std::uint32_t index, std::uint64_t address, std::uint32_t length, std::uint8_t cmd,
                       bool& busy) {
    busy = false;
    if (!(cmd & txd::CMD_EOP) || (cmd & (txd::CMD_IC | txd::CMD_VLE)) || tx_frame_.started) return false;
    if (length < net::kEthernetHeader || ((r(reg::TCTL) & tctl::PSP) && length < kMinFrame)) return false;
    auto frame = memory_.span(address, length);
    if (frame.empty()) return false;
    // Before the port lends the slot (window_tx_ledger.hpp): whether the
    // receiver may complete it and raise TXDW itself.
    nic::WindowTxLedger& ledger = shared_->e1000.window_tx;
    std::uint32_t may = peer_may_complete_tx() ? 1 : 0;
    if (ledger.peer_may_complete.load(std::memory_order_relaxed) != may)
        ledger.peer_may_complete.store(may, std::memory_order_release);
    switch (port_->send_in_window(index, address, 0, frame)) {
    case nic::NicPort::WindowSend::NotApplicable: return false;
    case nic::NicPort::WindowSend::Busy:
        ++counters_.tx_busy;
        busy = true;
        return false;
    case nic::NicPort::WindowSend::Placed: break;
    }
    ++counters_.tx_window_frames;
    account_tx(frame, net::Backend::SendResult::Sent);
    return true;
}

// The receiver's process may complete our lent slots and raise TXDW itself
// only while TXDW needs none of our timers.
bool E1000::peer_may_complete_tx() const {
    return !timers_enabled() || (r(reg::TIDV) == 0 && r(reg::TADV) == 0 && r(reg::ITR) == 0);
}

// Completes window slots up to the first one whose buffer the peer's guest
// still holds (RX descriptors [RDT, RDH) of the peer are the guest's); the
// peer gone, everything: the port does it through our TX view
// (window_tx_ledger.hpp's walk). The receiver's process does the same on
// its RDT writes when it may (peer_may_complete): then we never ask it for
// a doorbell. Slots in between that took the copy path were completed
// already; completing again only sets DD once more.
void E1000::complete_window_slots() {
    if (!port_) return;
    auto done = port_->complete_window_tx();  // nothing to do while nothing is lent
    counters_.tx_window_completed += done.completed;
    if (done.reported) signal_tx_written_back(done.all_delayed);
}

// A reset, a TDH write or a new ring: nothing is lent any more.
void E1000::forget_window_slots() {
    if (!port_) return;
    port_->abandon_tx();  // parked frames name descriptors of the old ring
    port_->window_forget();
}

void E1000::process_tx_ring() {
    if (!(r(reg::TCTL) & tctl::EN) || tx_pending_.active) return;
    std::uint32_t n = tx_ring_size();
    std::uint32_t head = r(reg::TDH);
    std::uint32_t tail = r(reg::TDT);
    if (n == 0 || head == tail) return;
    if (head >= n || tail >= n) {
        ++counters_.tx_bad_ring;
        log_.warn("{}: transmit ring head {} / tail {} outside a ring of {} descriptors", name_, head, tail, n);
        return;
    }
    if (!bus_master_) {
        ++counters_.dma_without_bus_master;
        log_.warn("{}: TDT written while PCI bus mastering is off; descriptors not fetched", name_);
        return;
    }
    std::uint64_t base = (std::uint64_t(r(reg::TDBAH)) << 32) | r(reg::TDBAL);

    while (head != tail) {
        auto raw = memory_.span(base + std::uint64_t(head) * kDescriptorSize, kDescriptorSize);
        if (raw.empty()) {
            ++counters_.tx_bad_address;
            log_.warn("{}: transmit descriptor {} at {:#x} outside guest memory", name_, head,
                      base + std::uint64_t(head) * kDescriptorSize);
            reset_tx_frame();
            head = (head + 1) % n;
            continue;
        }
        std::uint8_t d[kDescriptorSize];
        std::memcpy(d, raw.data(), kDescriptorSize);
        std::uint32_t dw2 = load_le32(d + 8);
        std::uint8_t cmd = std::uint8_t(dw2 >> 24);
        bool extended = cmd & txd::CMD_DEXT;
        std::uint8_t dtyp = (dw2 >> 20) & 0xF;

        if (extended && dtyp == txd::DTYP_CONTEXT) {
            TxContext& c = tx_context_;
            c.ipcss = d[0];
            c.ipcso = d[1];
            c.ipcse = load_le16(d + 2);
            c.tucss = d[4];
            c.tucso = d[5];
            c.tucse = load_le16(d + 6);
            c.paylen = dw2 & 0xFFFFF;
            c.tucmd = cmd;
            c.hdrlen = d[13];
            c.mss = load_le16(d + 14);
            complete_tx_descriptor(head, cmd);
            head = (head + 1) % n;
            continue;
        }
        if (extended && dtyp != txd::DTYP_DATA) {
            ++counters_.tx_malformed;
            log_.warn("{}: transmit descriptor {} has unknown type {}", name_, head, dtyp);
            complete_tx_descriptor(head, cmd);
            head = (head + 1) % n;
            continue;
        }

        std::uint64_t address = load_le64(d);
        std::uint32_t length = extended ? (dw2 & 0xFFFFF) : (dw2 & 0xFFFF);
        if (port_ && !extended) {
            bool busy = false;
            if (try_window(head, address, length, cmd, busy)) {
                head = (head + 1) % n;
                continue;
            }
            if (busy) {
                r(reg::TDH) = head;
                return;
            }
        }
        TxFrameState& f = tx_frame_;
        if (!f.started) {
            f.started = true;
            f.extended = extended;
            f.tse = extended && (cmd & txd::CMD_TSE);
            f.popts = extended ? d[13] : 0;
        }
        if (!extended && (cmd & txd::CMD_IC)) {
            f.legacy_ic = true;
            f.legacy_cso = std::uint8_t(dw2 >> 16);
            f.legacy_css = d[13];
        }
        if (length != 0 && !f.broken) {
            if (f.length + length > kMaxTxFrame) {
                ++counters_.tx_oversize;
                log_.warn("{}: transmit frame longer than {} bytes dropped", name_, kMaxTxFrame);
                f.broken = true;
            } else {
                auto data = memory_.span(address, length);
                if (data.empty()) {
                    ++counters_.tx_bad_address;
                    log_.warn("{}: transmit buffer {:#x}+{} outside guest memory", name_, address, length);
                    f.broken = true;
                } else {
                    std::memcpy(tx_buffer_.data() + f.length, data.data(), length);
                    f.length += length;
                }
            }
        }
        bool deferred = false;
        if (cmd & txd::CMD_EOP) {
            f.vlan = cmd & txd::CMD_VLE;
            f.vlan_tag = load_le16(d + 14);
            tx_token_ = head | std::uint32_t(cmd) << 16;
            tx_deferred_ = false;
            if (!finish_frame(cmd)) {
                r(reg::TDH) = head;  // the backend is busy: resume at this frame's EOP
                return;
            }
            deferred = tx_deferred_;
        }
        if (!deferred) complete_tx_descriptor(head, cmd);  // else: the frame's mover writes DD
        head = (head + 1) % n;
    }
    r(reg::TDH) = head;
    raise(icr::TXQE);
}

void E1000::complete_tx_descriptor(std::uint32_t index, std::uint8_t cmd) {
    if (!(cmd & txd::CMD_RS)) return;
    std::uint64_t base = (std::uint64_t(r(reg::TDBAH)) << 32) | r(reg::TDBAL);
    auto status = memory_.span(base + std::uint64_t(index) * kDescriptorSize + 12, 1);
    if (status.empty()) return;
    // The data was read before DD becomes visible to a polling driver.
    std::atomic_thread_fence(std::memory_order_release);
    status[0] = std::uint8_t(status[0] | txd::STA_DD);
    signal_tx_written_back(cmd & txd::CMD_IDE);
}

void E1000::resume_tx() {
    std::lock_guard lock(mutex_);
    reclaim_handoff();
    if (tx_pending_.active) {
        TxPending p = tx_pending_;
        std::uint32_t eop = r(reg::TDH);
        bool last = !p.segment || p.next_segment == p.segments;
        tx_token_ = last ? (eop | std::uint32_t(p.eop_cmd) << 16) : kNoTxToken;
        tx_deferred_ = false;
        if (!send_prepared(p.segment, p.length)) {  // still busy
            if (port_) port_->end_batch();
            return;
        }
        tx_pending_ = {};
        if (p.segment && p.next_segment < p.segments) {
            tx_token_ = eop | std::uint32_t(p.eop_cmd) << 16;  // send_tso gives it to the last segment
            if (!send_tso(p.next_segment, p.eop_cmd)) {
                if (port_) port_->end_batch();
                return;
            }
        } else {
            if (p.segment) stat_add(reg::TSCTC);
            reset_tx_frame();
        }
        std::uint32_t n = tx_ring_size();
        std::uint32_t head = r(reg::TDH);
        if (!tx_deferred_) complete_tx_descriptor(head, p.eop_cmd);
        if (n != 0) r(reg::TDH) = (head + 1) % n;
    }
    process_tx();
}

bool E1000::finish_frame(std::uint8_t eop_cmd) {
    TxFrameState& f = tx_frame_;
    if (f.broken) {
        reset_tx_frame();
        return true;
    }
    if (f.tse) return send_tso(0, eop_cmd);
    if (f.length < net::kEthernetHeader) {
        ++counters_.tx_malformed;
        log_.warn("{}: {}-byte transmit frame dropped", name_, f.length);
        reset_tx_frame();
        return true;
    }
    std::span<std::uint8_t> buffer(tx_buffer_);
    std::size_t length = f.length;
    if (f.extended) {
        const TxContext& c = tx_context_;
        if (f.popts & txd::POPTS_IXSM) insert_checksum(buffer, length, c.ipcss, c.ipcse, c.ipcso, 0, false);
        if (f.popts & txd::POPTS_TXSM)
            insert_checksum(buffer, length, c.tucss, c.tucse, c.tucso, 0, !(c.tucmd & txd::TUCMD_TCP));
    } else if (f.legacy_ic) {
        insert_checksum(buffer, length, f.legacy_css, 0, f.legacy_cso, 0, false);
    }
    length = finalize_frame(buffer, length);
    if (!send_prepared(false, length)) {
        tx_pending_ = {.active = true, .segment = false, .length = length, .eop_cmd = eop_cmd};
        return false;
    }
    reset_tx_frame();
    return true;
}

// TCP segmentation: the frame in tx_buffer_ is hdrlen bytes of headers
// followed by the payload; each segment gets a copy of the headers with
// IP length/ID, TCP sequence/flags (or UDP length) and checksums fixed.
bool E1000::send_tso(std::uint32_t first_segment, std::uint8_t eop_cmd) {
    const TxContext& c = tx_context_;
    const TxFrameState& f = tx_frame_;
    std::size_t header = c.hdrlen;
    bool ipv4 = c.tucmd & txd::TUCMD_IP;
    bool tcp = c.tucmd & txd::TUCMD_TCP;
    bool valid = c.mss >= kMinTsoMss && header >= net::kEthernetHeader && header <= f.length &&
                 std::size_t(c.ipcss) + (ipv4 ? 20 : 40) <= header &&
                 std::size_t(c.tucss) + (tcp ? 20 : 8) <= header && std::size_t(c.tucso) + 2 <= header &&
                 std::size_t(c.ipcso) + 2 <= header && header + c.mss <= kMaxTxFrame;
    if (!valid) {
        ++counters_.tx_bad_offload;
        stat_add(reg::TSCTFC);
        log_.warn("{}: TSO context rejected (hdrlen {}, mss {}, frame {} bytes)", name_, header, c.mss, f.length);
        reset_tx_frame();
        return true;
    }
    std::size_t payload = f.length - header;
    std::uint32_t segments = payload == 0 ? 1 : std::uint32_t((payload + c.mss - 1) / c.mss);
    const std::uint8_t* src = tx_buffer_.data();
    std::uint16_t first_id = load_be16(src + c.ipcss + 4);
    std::uint32_t first_seq = load_be32(src + c.tucss + 4);
    std::span<std::uint8_t> seg(tx_segment_);

    const std::uint32_t eop_token = tx_token_;
    for (std::uint32_t k = first_segment; k < segments; ++k) {
        std::size_t offset = std::size_t(k) * c.mss;
        std::size_t chunk = std::min<std::size_t>(c.mss, payload - offset);
        bool last = k + 1 == segments;
        tx_token_ = last ? eop_token : kNoTxToken;  // only the last segment completes the frame
        std::memcpy(seg.data(), src, header);
        std::memcpy(seg.data() + header, src + header + offset, chunk);
        std::size_t length = header + chunk;
        std::uint8_t* p = seg.data();
        if (ipv4) {
            store_be16(p + c.ipcss + 2, std::uint16_t(length - c.ipcss));
            store_be16(p + c.ipcss + 4, std::uint16_t(first_id + k));
        } else {
            store_be16(p + c.ipcss + 4, std::uint16_t(length - c.ipcss - 40));
        }
        if (tcp) {
            store_be32(p + c.tucss + 4, first_seq + std::uint32_t(offset));
            if (!last) p[c.tucss + 13] &= std::uint8_t(~(kTcpFin | kTcpPsh));
        } else {
            store_be16(p + c.tucss + 4, std::uint16_t(length - c.tucss));
        }
        if (f.popts & txd::POPTS_IXSM) insert_checksum(seg, length, c.ipcss, c.ipcse, c.ipcso, 0, false);
        // The driver seeded the pseudo-header sum without the length; the
        // NIC adds each segment's own TCP/UDP length.
        if (f.popts & txd::POPTS_TXSM)
            insert_checksum(seg, length, c.tucss, c.tucse, c.tucso, std::uint32_t(length - c.tucss), !tcp);
        length = finalize_frame(seg, length);
        ++counters_.tx_tso_segments;
        if (!send_prepared(true, length)) {
            tx_pending_ = {.active = true, .segment = true, .length = length, .next_segment = k + 1,
                           .segments = segments, .eop_cmd = eop_cmd};
            return false;
        }
    }
    stat_add(reg::TSCTC);
    reset_tx_frame();
    return true;
}

// Ones' complement sum over [start, end] (end 0: to the end of the frame),
// stored complemented at `at`. UDP sends a computed 0 as 0xFFFF.
void E1000::insert_checksum(std::span<std::uint8_t> frame, std::size_t length, std::size_t start, std::size_t end,
                            std::size_t at, std::uint32_t extra, bool udp) {
    std::size_t stop = end == 0 ? length : std::min(end + 1, length);
    if (start >= stop || at + 2 > length) {
        ++counters_.tx_bad_offload;
        log_.warn("{}: checksum offload offsets start {} end {} at {} outside a {}-byte frame", name_, start, end,
                  at, length);
        return;
    }
    std::uint16_t sum = std::uint16_t(~fold_checksum(add_checksum(frame.subspan(start, stop - start), extra)));
    if (udp && sum == 0) sum = 0xFFFF;
    store_be16(frame.data() + at, sum);
}

// VLAN tag insertion (VLE with CTRL.VME) and short-packet padding (TCTL.PSP).
std::size_t E1000::finalize_frame(std::span<std::uint8_t> buffer, std::size_t length) {
    if (tx_frame_.vlan && (r(reg::CTRL) & ctrl::VME)) {
        std::memmove(buffer.data() + 16, buffer.data() + 12, length - 12);
        store_be16(buffer.data() + 12, std::uint16_t(r(reg::VET)));
        store_be16(buffer.data() + 14, tx_frame_.vlan_tag);
        length += 4;
    }
    if ((r(reg::TCTL) & tctl::PSP) && length < kMinFrame) {
        std::memset(buffer.data() + length, 0, kMinFrame - length);
        length = kMinFrame;
    }
    return length;
}

bool E1000::send_prepared(bool segment, std::size_t length) {
    const std::vector<std::uint8_t>& buffer = segment ? tx_segment_ : tx_buffer_;
    if (send_frame({buffer.data(), length}) == net::Backend::SendResult::Busy) {
        ++counters_.tx_busy;
        return false;
    }
    return true;
}

// The frame sink: to the backend, or, with crossover configured, through
// the port (which places frames for a peer straight into its RX ring).
net::Backend::SendResult E1000::send_frame(std::span<const std::uint8_t> frame) {
    auto result = port_ ? port_->send_completable(frame, tx_token_) : backend_.send(frame);
    if (result == net::Backend::SendResult::Busy) return result;
    if (result == net::Backend::SendResult::Deferred) {
        // Taken: a crossover peer moves it when its ring has room and
        // completes the EOP descriptor then (TX handoff).
        tx_deferred_ = tx_token_ != kNoTxToken;
        ++counters_.tx_parked;
        result = net::Backend::SendResult::Sent;
    }
    account_tx(frame, result);
    return result;
}

void E1000::account_tx(std::span<const std::uint8_t> frame, net::Backend::SendResult result) {
    if (result == net::Backend::SendResult::Sent) {
        ++counters_.tx_frames;
        counters_.tx_bytes += frame.size();
    } else {
        ++counters_.tx_dropped_backend;
    }
    // The wire saw it either way: count it as the hardware would (with FCS).
    std::size_t wire = frame.size() + 4;
    stat_add(reg::GPTC);
    stat_add(reg::TPT);
    stat_add_octets(reg::GOTCL, wire);
    stat_add_octets(reg::TOTL, wire);
    count_size_bin(reg::PTC64, wire);
    if (frame[0] & 1) {
        bool broadcast = std::all_of(frame.begin(), frame.begin() + 6, [](std::uint8_t b) { return b == 0xFF; });
        stat_add(broadcast ? reg::BPTC : reg::MPTC);
    }
}

}  // namespace xover::e1000
