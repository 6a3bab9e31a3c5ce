/*
 * role=responder ip=A.B.C.D [count=N]: answers ARP requests for ip and ICMP
 * echo requests to it, so that `ping` from the host (over a tap device)
 * reaches the VM; also sends nettest's test frames back to their source as
 * role=echo does, so a role=ping VM can talk to it at the same time. Exits
 * 0 after N ICMP echo replies, or, without count=, at the first idle
 * timeout if it answered anything.
 */
#include "frame.h"
#include "guest.h"
#include "nettest.h"

#define ARP_REQUEST 1
#define ARP_REPLY   2
#define IP_PROTO_ICMP 1
#define ICMP_ECHO_REPLY   0
#define ICMP_ECHO_REQUEST 8

/* The Internet checksum (RFC 1071) over n bytes. */
static uint16_t inet_checksum(const uint8_t *p, unsigned n)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i + 1 < n; i += 2)
		sum += get_be16(p + i);
	if (n & 1)
		sum += p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ARP for our address: reply in place of the request, in a TX buffer. */
static bool answer_arp(struct nic *nic, const struct options *o, const uint8_t *f, uint16_t len)
{
	const uint8_t *arp = f + ETH_HLEN;

	if (len < ETH_HLEN + 28 || get_be16(arp) != 1 || get_be16(arp + 2) != ETHERTYPE_IPV4 ||
	    arp[4] != 6 || arp[5] != 4 || get_be16(arp + 6) != ARP_REQUEST ||
	    memcmp(arp + 24, o->ip, 4))
		return false;

	uint8_t *out = tx_slot_wait(nic, o->timeout_ms);
	if (!out)
		return false;
	memset(out, 0, ETH_MIN_LEN);
	eth_header(out, arp + 8, nic->mac, ETHERTYPE_ARP);
	uint8_t *r = out + ETH_HLEN;
	memcpy(r, arp, 6); /* htype, ptype, hlen, plen */
	put_be16(r + 6, ARP_REPLY);
	memcpy(r + 8, nic->mac, 6);
	memcpy(r + 14, o->ip, 4);
	memcpy(r + 18, arp + 8, 10); /* their MAC and IP */
	nic_tx_commit(nic, ETH_MIN_LEN);
	nic_tx_kick(nic);
	return true;
}

/* A test frame (role=ping's): the same frame back to its sender. */
static bool echo_test_frame(struct nic *nic, const struct options *o, const uint8_t *f, uint16_t len)
{
	uint32_t seq;

	if (test_frame_check(f, len, &seq) == FRAME_OTHER)
		return false;
	uint8_t *out = tx_slot_wait(nic, o->timeout_ms);
	if (!out)
		return false;
	memcpy(out, f, len);
	eth_reply(out, nic->mac);
	nic_tx_commit(nic, len);
	nic_tx_kick(nic);
	return true;
}

/* ICMP echo request to us: the same packet back with addresses swapped. */
static bool answer_icmp(struct nic *nic, const struct options *o, const uint8_t *f, uint16_t len)
{
	const uint8_t *ip = f + ETH_HLEN;
	unsigned ihl = (ip[0] & 0xf) * 4, total;

	if (len < ETH_HLEN + 20 || (ip[0] >> 4) != 4 || ihl < 20 || ip[9] != IP_PROTO_ICMP ||
	    memcmp(ip + 16, o->ip, 4))
		return false;
	total = get_be16(ip + 2);
	if (total < ihl + 8 || ETH_HLEN + total > len || ip[ihl] != ICMP_ECHO_REQUEST)
		return false;

	uint8_t *out = tx_slot_wait(nic, o->timeout_ms);
	if (!out)
		return false;
	memcpy(out, f, ETH_HLEN + total);
	eth_reply(out, nic->mac);
	uint8_t *rip = out + ETH_HLEN, *icmp = rip + ihl;
	memcpy(rip + 12, ip + 16, 4); /* source := the address they pinged */
	memcpy(rip + 16, ip + 12, 4);
	rip[8] = 64; /* TTL */
	put_be16(rip + 10, 0);
	put_be16(rip + 10, inet_checksum(rip, ihl));
	icmp[0] = ICMP_ECHO_REPLY;
	put_be16(icmp + 2, 0);
	put_be16(icmp + 2, inet_checksum(icmp, total - ihl));
	uint16_t out_len = ETH_HLEN + total;
	if (out_len < ETH_MIN_LEN) {
		memset(out + out_len, 0, ETH_MIN_LEN - out_len);
		out_len = ETH_MIN_LEN;
	}
	nic_tx_commit(nic, out_len);
	nic_tx_kick(nic);
	return true;
}

int role_responder(struct nic *nic, const struct options *o)
{
	uint64_t arps = 0, echoes = 0, tests = 0, deadline = deadline_ms(o->timeout_ms);
	bool timed_out = false;

	if (!o->have_ip) {
		printf("nettest: role=responder needs ip=\n");
		return 2;
	}
	while (!o->count || echoes < o->count) {
		uint16_t len;
		const uint8_t *f = nic_rx_peek(nic, &len);

		if (!f) {
			if (deadline_passed(deadline)) {
				timed_out = true;
				break;
			}
			continue;
		}
		if (len >= ETH_HLEN) {
			uint16_t type = get_be16(f + 12);

			if (type == ETHERTYPE_ARP && answer_arp(nic, o, f, len))
				arps++;
			else if (type == ETHERTYPE_IPV4 && answer_icmp(nic, o, f, len))
				echoes++;
			else if (echo_test_frame(nic, o, f, len))
				tests++;
		}
		deadline = deadline_ms(o->timeout_ms);
		nic_rx_done(nic);
	}
	tx_drain(nic, o->timeout_ms);
	printf("RESULT role=responder arp=%lu icmp=%lu echoed=%lu\n", arps, echoes, tests);
	if (timed_out && o->count)
		return 1;
	return echoes || tests ? 0 : 1;
}
