// A crossover producer writes into an e1000 peer's ring what that peer's
// own NIC would have written for the same frame from its backend: the
// same buffer bytes (VLAN tag stripped under CTRL.VME, FCS unless SECRC)
// and the same descriptor write-back (length, status with VP and the
// checksum bits or IXSM, errors, special). Both go through
// e1000::rx_delivery; this pins them together, register for register.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "crossover_sender.hpp"

using namespace xover;
using namespace xover::test;

namespace {

const net::MacAddress kReceiverMac{{0x52, 0x54, 0x00, 0x77, 0x00, 0x09}};

Bytes to_receiver(Bytes f) {
    std::copy(kReceiverMac.bytes.begin(), kReceiverMac.bytes.end(), f.begin());
    return f;
}
// The same frame with an 802.1Q tag (TCI 0x2005) after the addresses.
Bytes tagged(const Bytes& f) {
    Bytes out(f.begin(), f.begin() + 12);
    Bytes tag{0x81, 0x00, 0x20, 0x05};
    out.insert(out.end(), tag.begin(), tag.end());
    out.insert(out.end(), f.begin() + 12, f.end());
    return out;
}

struct Written {
    Bytes bytes;
    std::uint16_t length;
    std::uint8_t status, errors;
    std::uint16_t special;
};

// The receiver's registers for one case: CTRL.VME, RXCSUM, RCTL.SECRC.
struct Setup {
    bool vme = true;
    std::uint32_t rxcsum = e1000::rxcsum::IPOFL | e1000::rxcsum::TUOFL;
    bool secrc = true;
    void apply(E1000Rig& rig) const {
        rig.wr(e1000::reg::CTRL, rig.rd(e1000::reg::CTRL) | (vme ? e1000::ctrl::VME : 0));
        rig.wr(e1000::reg::RXCSUM, rxcsum);
    }
    std::uint32_t rctl() const { return e1000::rctl::BAM | (secrc ? e1000::rctl::SECRC : 0); }
};

Written local(const Bytes& frame, const Setup& setup) {
    E1000Rig rig(4 << 20, kReceiverMac);
    setup.apply(rig);
    RxRing rx(rig, 8, setup.rctl());
    REQUIRE(rig.nic.deliver(frame));
    return {rx.frame(0), rx.length(0), rx.status(0), rx.errors(0), rx.special(0)};
}

Written over_crossover(const Bytes& frame, const Setup& setup) {
    Sender a;
    E1000Receiver b{kReceiverMac};
    setup.apply(b);
    RxRing rx(b, 8, setup.rctl());
    int irq = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a.add(make_link(1, kReceiverMac, "e1000", b.memory, b.port.page(), irq));
    a.tx.legacy(frame);
    a.tx.kick();
    ::close(irq);
    REQUIRE(b.rd(e1000::reg::RDH) == 1);
    return {rx.frame(0), rx.length(0), rx.status(0), rx.errors(0), rx.special(0)};
}

void same_delivery(const Bytes& frame, const Setup& setup) {
    Written l = local(frame, setup), p = over_crossover(frame, setup);
    CHECK(p.bytes == l.bytes);
    CHECK(p.length == l.length);
    CHECK(int(p.status) == int(l.status));
    CHECK(int(p.errors) == int(l.errors));
    CHECK(p.special == l.special);
}

}  // namespace

TEST_CASE("crossover: an e1000 peer gets what its own NIC would deliver") {
    Bytes udp = to_receiver(udp_frame(100));
    finish_checksums(udp);
    Bytes tcp = to_receiver(tcp_frame(200));
    finish_checksums(tcp);
    Bytes bad_udp = udp;
    bad_udp[50] ^= 0xff;  // payload changed after the checksum
    Bytes bad_ip = tcp;
    bad_ip[22] = 1;  // TTL changed after the header checksum
    Bytes plain = to_receiver(ethernet(kReceiverMac, kNicMac, 0x88b5, 64));

    SECTION("untagged: checksums checked, the results in status and errors") {
        for (const Bytes* f : {&plain, &udp, &tcp, &bad_udp, &bad_ip}) same_delivery(*f, Setup{});
        Written w = over_crossover(tcp, Setup{});
        CHECK((w.status & (e1000::rxd::STA_IPCS | e1000::rxd::STA_TCPCS)) ==
              (e1000::rxd::STA_IPCS | e1000::rxd::STA_TCPCS));
        CHECK(w.errors == 0);
        CHECK((over_crossover(bad_udp, Setup{}).errors & e1000::rxd::ERR_TCPE) != 0);
        CHECK((over_crossover(bad_ip, Setup{}).errors & e1000::rxd::ERR_IPE) != 0);
    }
    SECTION("tagged with CTRL.VME: the tag goes into the descriptor") {
        for (const Bytes* f : {&plain, &udp, &bad_ip}) same_delivery(tagged(*f), Setup{});
        Written w = over_crossover(tagged(udp), Setup{});
        CHECK((w.status & e1000::rxd::STA_VP) != 0);
        CHECK(w.special == 0x2005);
        CHECK(w.bytes == udp);  // the frame as sent, less its tag
    }
    SECTION("tagged without VME: the tag stays in the frame") {
        Setup s{.vme = false};
        same_delivery(tagged(udp), s);
        CHECK(over_crossover(tagged(udp), s).bytes == tagged(udp));
    }
    SECTION("offloads off: IXSM; no SECRC: the FCS follows the frame") {
        Setup s{.rxcsum = 0, .secrc = false};
        for (const Bytes* f : {&udp, &tcp}) same_delivery(tagged(*f), s);
        Written w = over_crossover(udp, s);
        CHECK((w.status & e1000::rxd::STA_IXSM) != 0);
        CHECK(w.bytes.size() == udp.size() + 4);
    }
}
