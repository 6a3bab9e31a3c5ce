/*
 * Port I/O. The same in/out instructions serve both rings: at CPL0 they run
 * as they are; at CPL3 they raise #GP (kvm_pvm ignores IOPL, and we keep
 * IOPL=0 so QEMU/KVM behaves the same) and the #GP handler performs them
 * (pio_emul.c), then resumes after the instruction.
 *
 * Why not an `int $0x80` gate: kvm_pvm turns a software interrupt at CPL3
 * into #UD (and cannot emulate one at CPL0), so trapping on the I/O
 * instruction itself is the one mechanism that works everywhere.
 *
 * Each access from CPL3 costs a trap plus a VM exit (~70 us under kvm_pvm):
 * keep port I/O off hot paths. outsb() moves a whole buffer per trap.
 */
#ifndef GUEST_PIO_H
#define GUEST_PIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool at_cpl0(void)
{
	uint16_t cs;

	asm volatile("mov %%cs, %0" : "=r"(cs));
	return (cs & 3) == 0;
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

/*
 * Writes len bytes to one port. At CPL3 a single `rep outsb` is one trap for
 * the whole buffer; at CPL0 (fault messages) a plain loop, because string
 * I/O is more than the kvm_pvm emulator needs to be trusted with.
 */
static inline void outsb(uint16_t port, const void *buf, size_t len)
{
	if (at_cpl0()) {
		for (size_t i = 0; i < len; i++)
			outb(port, ((const uint8_t *)buf)[i]);
		return;
	}
	asm volatile("rep outsb" : "+S"(buf), "+c"(len) : "d"(port) : "memory");
}

#endif
