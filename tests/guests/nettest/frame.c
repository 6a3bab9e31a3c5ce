#include "frame.h"
#include "mem.h"
#include "console.h"

void eth_header(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put_be16(f + 12, type);
}

void eth_reply(uint8_t *f, const uint8_t mac[6])
{
	memcpy(f, f + 6, 6);
	memcpy(f + 6, mac, 6);
}

static uint32_t load32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void store32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }

/* Not cryptographic, just sensitive to any changed, moved or missing byte. */
static uint32_t checksum(uint32_t seq, uint16_t len, const uint8_t *p, unsigned n)
{
	uint32_t c = seq * 2654435761u ^ len;

	for (unsigned i = 0; i < n; i++)
		c = (c << 5 | c >> 27) + p[i];
	return c;
}

void test_frame_build(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint32_t seq,
		      uint16_t len)
{
	uint8_t *payload = f + TEST_HDR_LEN;
	unsigned n = len - TEST_HDR_LEN;

	eth_header(f, dst, src, ETHERTYPE_TEST);
	store32(f + 14, seq);
	f[18] = len & 0xff;
	f[19] = len >> 8;
	f[20] = f[21] = 0;
	for (unsigned i = 0; i < n; i++)
		payload[i] = (uint8_t)(seq * 7 + i);
	store32(f + 22, checksum(seq, len, payload, n));
}

enum frame_status test_frame_check(const uint8_t *f, uint16_t len, uint32_t *seq)
{
	if (len < TEST_HDR_LEN || get_be16(f + 12) != ETHERTYPE_TEST)
		return FRAME_OTHER;
	uint32_t s = load32(f + 14);
	uint16_t sent_len = f[18] | f[19] << 8;
	/* Short frames arrive padded to 60 bytes, never shorter than sent. */
	if (sent_len < TEST_HDR_LEN || sent_len > len)
		return FRAME_CORRUPT;
	if (checksum(s, sent_len, f + TEST_HDR_LEN, sent_len - TEST_HDR_LEN) != load32(f + 22))
		return FRAME_CORRUPT;
	*seq = s;
	return FRAME_OK;
}

void format_mac(char out[18], const uint8_t m[6])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}
