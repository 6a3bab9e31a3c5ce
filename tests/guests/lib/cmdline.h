/* The kernel command line: space-separated key=value words. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void cmdline_init(const char *src); /* copies src (may be NULL) */
const char *cmdline(void);

/* Copies the value of key into buf (NUL-terminated); false if absent. */
bool cmdline_get(const char *key, char *buf, size_t size);
bool cmdline_has(const char *key);
/* Decimal or 0x-hex; def if absent; panics if malformed. */
uint64_t cmdline_uint(const char *key, uint64_t def);
/* aa:bb:cc:dd:ee:ff; false if absent; panics if malformed. */
bool cmdline_mac(const char *key, uint8_t mac[6]);

/* Parsers the getters use, for other text too. */
bool parse_uint(const char *s, uint64_t *out);
bool parse_mac(const char *s, uint8_t mac[6]);
bool parse_ipv4(const char *s, uint8_t ip[4]);

#endif
