/*
 * Runs the port I/O (and sti/cli) instructions that CPL3 code executes: they
 * fault with #GP, trap_dispatch() hands the frame here, and we perform the
 * access at CPL0 and step over the instruction. CPL0 code is emulated by
 * kvm_pvm at about 1 us per instruction, so the decoder is a few compares.
 *
 * Recognised: in/out with AL/AX/EAX and an imm8 or DX port (E4-E7, EC-EF,
 * with a 0x66 prefix for AX), `rep outsb` (F3 6E) and cli/sti (FA/FB),
 * which flip RFLAGS.IF in the interrupted frame.
 */
#include "kernel.h"
#include "pio.h"

#define RFLAGS_IF 0x200ull

static uint32_t port_in(uint16_t port, unsigned size)
{
	if (size == 1)
		return inb(port);
	if (size == 2)
		return inw(port);
	return inl(port);
}

static void port_out(uint16_t port, unsigned size, uint32_t v)
{
	if (size == 1)
		outb(port, (uint8_t)v);
	else if (size == 2)
		outw(port, (uint16_t)v);
	else
		outl(port, v);
}

bool pio_emulate(struct trap_frame *f)
{
	const uint8_t *ip = (const uint8_t *)f->rip;
	unsigned len = 0, size = 4;
	bool rep = false;

	for (;; len++) {
		if (ip[len] == 0x66)
			size = 2;
		else if (ip[len] == 0xf3)
			rep = true;
		else
			break;
	}
	uint8_t op = ip[len++];

	if (op == 0xfa) {
		f->rflags &= ~RFLAGS_IF;
	} else if (op == 0xfb) {
		f->rflags |= RFLAGS_IF;
	} else if (op == 0x6e && rep) {
		const uint8_t *src = (const uint8_t *)f->rsi;

		for (uint64_t i = 0; i < f->rcx; i++)
			outb((uint16_t)f->rdx, src[i]);
		f->rsi += f->rcx;
		f->rcx = 0;
	} else if ((op & 0xf4) == 0xe4) {
		uint16_t port = (op & 0x08) ? (uint16_t)f->rdx : ip[len++];

		if (!(op & 0x01))
			size = 1;
		if (op & 0x02) {
			port_out(port, size, (uint32_t)f->rax);
		} else {
			uint32_t v = port_in(port, size);

			if (size == 1)
				f->rax = (f->rax & ~0xffull) | v;
			else if (size == 2)
				f->rax = (f->rax & ~0xffffull) | v;
			else
				f->rax = v; /* a 32-bit register write zero-extends */
		}
	} else {
		return false;
	}
	f->rip += len;
	return true;
}
