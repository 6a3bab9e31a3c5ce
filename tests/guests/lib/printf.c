/*
 * A small printf: enough for test output (%d %i %u %x %X %p %s %c with
 * - 0 # flags, width and l/ll/z). Output is gathered into a line buffer and
 * written to the UART in as few traps as possible.
 */
#include <stdint.h>

#include "console.h"
#include "kernel.h"

struct sink {
	char *buf;
	size_t size, len; /* len counts every byte produced, even if dropped */
	int to_serial;
};

static void sink_flush(struct sink *s)
{
	if (s->to_serial) {
		serial_write(s->buf, s->len);
		s->len = 0;
	}
}

static void sink_put(struct sink *s, char c)
{
	if (s->to_serial && s->len == s->size)
		sink_flush(s);
	if (s->len < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void put_padding(struct sink *s, char c, int n)
{
	while (n-- > 0)
		sink_put(s, c);
}

static void put_number(struct sink *s, uint64_t v, int neg, unsigned base, int upper,
		       int width, int zero, int left, const char *prefix)
{
	char digits[24];
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0, plen = 0;

	do {
		digits[n++] = set[v % base];
		v /= base;
	} while (v);
	if (neg)
		prefix = "-";
	while (prefix[plen])
		plen++;

	int pad = width - n - plen;
	if (!left && !zero)
		put_padding(s, ' ', pad);
	for (int i = 0; i < plen; i++)
		sink_put(s, prefix[i]);
	if (!left && zero)
		put_padding(s, '0', pad);
	while (n)
		sink_put(s, digits[--n]);
	if (left)
		put_padding(s, ' ', pad);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		int zero = 0, left = 0, alt = 0, width = 0, lng = 0;

		for (;; fmt++) {
			if (fmt[1] == '0')
				zero = 1;
			else if (fmt[1] == '-')
				left = 1;
			else if (fmt[1] == '#')
				alt = 1;
			else
				break;
		}
		fmt++;
		if (*fmt == '*') {
			width = va_arg(ap, int);
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng = 1;
			fmt++;
		}

		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_number(s, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, 0, width,
				   zero, left, "");
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			unsigned base = *fmt == 'u' ? 10 : 16;
			put_number(s, v, 0, base, *fmt == 'X', width, zero, left,
				   alt && base == 16 ? "0x" : "");
			break;
		}
		case 'p':
			put_number(s, (uint64_t)va_arg(ap, void *), 0, 16, 0, width, zero, left, "0x");
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			int n = 0;

			if (!str)
				str = "(null)";
			while (str[n])
				n++;
			if (!left)
				put_padding(s, ' ', width - n);
			for (int i = 0; i < n; i++)
				sink_put(s, str[i]);
			if (left)
				put_padding(s, ' ', width - n);
			break;
		}
		case 'c':
			sink_put(s, (char)va_arg(ap, int));
			break;
		case '%':
			sink_put(s, '%');
			break;
		case '\0':
			return;
		default: /* unknown: print it as written */
			sink_put(s, '%');
			sink_put(s, *fmt);
			break;
		}
	}
}

int vprintf(const char *fmt, va_list ap)
{
	char line[256];
	struct sink s = { line, sizeof(line), 0, 1 };

	format(&s, fmt, ap);
	sink_flush(&s);
	return 0;
}

int printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	return 0;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { buf, size, 0, 0 };

	format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void panic(const char *fmt, ...)
{
	va_list ap;

	puts("PANIC: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	puts("\n");
	exit(EXIT_PANIC);
}
