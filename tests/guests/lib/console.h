/* Serial console (16550 at 0x3f8) and a small printf. */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

/* Exit codes the toolkit itself uses. */
#define EXIT_FAULT 3 /* an exception at CPL0 or CPL3 */
#define EXIT_PANIC 4 /* panic(): a toolkit or driver invariant broke */

#define COM1 0x3f8

void serial_init(void);
void serial_write(const char *s, size_t len);
void putc(char c);
void puts(const char *s); /* no newline added */

/* %d %i %u %x %X %p %s %c %%, flags - 0 #, width, l/ll/z. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

#endif
