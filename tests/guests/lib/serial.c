/*
 * The 16550 UART as a console. Every port access is a trap to CPL0 and a VM
 * exit, so output goes out one whole string per trap (rep outsb) and we do
 * not poll LSR.THRE per byte: virtual UARTs (QEMU, xover) accept bytes as
 * fast as they are written.
 */
#include "console.h"
#include "kernel.h"
#include "pio.h"

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* IER: no interrupts */
	outb(COM1 + 3, 0x03); /* LCR: 8N1, DLAB off (baud rate is moot here) */
}

void serial_write(const char *s, size_t len)
{
	if (len)
		outsb(COM1, s, len);
}

void putc(char c)
{
	serial_write(&c, 1);
}

void puts(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	serial_write(s, n);
}

void exit(int code)
{
	outb(0xf4, (uint8_t)code);
	/* Without a debug-exit device we just stop here (hlt would #GP at CPL3). */
	for (;;)
		cpu_relax();
}
