/*
 * The test frames every role exchanges: an Ethernet frame of type 0x88B5
 * (IEEE local experimental) whose payload starts with a sequence number,
 * the frame length as sent and a checksum over the rest, followed by a
 * pattern derived from the sequence number — so a receiver detects loss,
 * reordering, truncation and corruption.
 */
#ifndef NETTEST_FRAME_H
#define NETTEST_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#define ETHERTYPE_TEST 0x88b5
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define TEST_HDR_LEN   (14 + 12) /* Ethernet header + seq, len, reserved, csum */
#define SEQ_PROBE      0xffffffffu /* ping's warm-up frames */

enum frame_status { FRAME_OK, FRAME_OTHER, FRAME_CORRUPT };

static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }

/* dst, src and ethertype. */
void eth_header(uint8_t *frame, const uint8_t dst[6], const uint8_t src[6], uint16_t type);
/* Swaps addresses for a reply: dst := old src, src := mac. */
void eth_reply(uint8_t *frame, const uint8_t mac[6]);

void test_frame_build(uint8_t *frame, const uint8_t dst[6], const uint8_t src[6], uint32_t seq,
		      uint16_t len);
/* FRAME_OTHER for a frame of another type; *seq is set for OK frames. */
enum frame_status test_frame_check(const uint8_t *frame, uint16_t len, uint32_t *seq);

void format_mac(char out[18], const uint8_t mac[6]);

#endif
