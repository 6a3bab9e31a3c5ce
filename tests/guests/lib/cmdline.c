#include "cmdline.h"
#include "console.h"
#include "mem.h"

static char line[1024];

void cmdline_init(const char *src)
{
	size_t n = 0;

	if (src)
		while (src[n] && n < sizeof(line) - 1) {
			line[n] = src[n];
			n++;
		}
	line[n] = '\0';
}

const char *cmdline(void)
{
	return line;
}

/* Finds "key=" at the start of a word; returns the value or NULL. */
static const char *find(const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = line; *p;) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && (p[klen] == '=' || p[klen] == ' ' || !p[klen]))
			return p[klen] == '=' ? p + klen + 1 : p + klen;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

bool cmdline_has(const char *key)
{
	return find(key) != NULL;
}

bool cmdline_get(const char *key, char *buf, size_t size)
{
	const char *v = find(key);
	size_t n = 0;

	if (!v)
		return false;
	while (v[n] && v[n] != ' ' && n + 1 < size) {
		buf[n] = v[n];
		n++;
	}
	buf[n] = '\0';
	return true;
}

bool parse_uint(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return false;
		if (d >= base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[0]), lo = hex_digit(s[1]);

		if (hi < 0 || lo < 0 || s[2] != (i == 5 ? '\0' : ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
		s += 3;
	}
	return true;
}

bool parse_ipv4(const char *s, uint8_t ip[4])
{
	for (int i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (!digits || v > 255 || *s != (i == 3 ? '\0' : '.'))
			return false;
		ip[i] = (uint8_t)v;
		s++;
	}
	return true;
}

uint64_t cmdline_uint(const char *key, uint64_t def)
{
	char buf[32];
	uint64_t v;

	if (!cmdline_get(key, buf, sizeof(buf)))
		return def;
	if (!parse_uint(buf, &v))
		panic("cmdline: %s=%s is not a number", key, buf);
	return v;
}

bool cmdline_mac(const char *key, uint8_t mac[6])
{
	char buf[32];

	if (!cmdline_get(key, buf, sizeof(buf)))
		return false;
	if (!parse_mac(buf, mac))
		panic("cmdline: %s=%s is not a MAC address", key, buf);
	return true;
}
