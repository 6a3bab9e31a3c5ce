/*
 * The CPL0 side of a guest: traps, interrupts and the way back to CPL3.
 * main() runs at CPL3; only trap handlers run at CPL0.
 */
#ifndef GUEST_KERNEL_H
#define GUEST_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include "layout.h"

/* What isr_common (traps.S) leaves on the stack, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/*
 * An interrupt handler runs at CPL0 with interrupts off (slow under
 * kvm_pvm: keep it short). The LAPIC EOI is sent after it returns.
 */
typedef void (*irq_handler_t)(unsigned vector);
void irq_set_handler(unsigned vector, irq_handler_t handler);

/* Interrupts seen per vector, and the last one (written at CPL0). */
extern volatile uint32_t irq_count[256];
extern volatile uint32_t irq_last_vector;

/*
 * RFLAGS.IF of CPL3 code. sti/cli trap at CPL3 (IOPL=0) and pio_emulate()
 * flips IF in the interrupted frame, which is what iretq restores.
 */
static inline void irq_enable(void)
{
	asm volatile("sti" ::: "memory");
}

static inline void irq_disable(void)
{
	asm volatile("cli" ::: "memory");
}

/* The #GP half of the above, and of port I/O at CPL3 (pio_emul.c). */
bool pio_emulate(struct trap_frame *f);

static inline void cpu_relax(void)
{
	asm volatile("pause" ::: "memory");
}

/* Ends the VM through the debug-exit port; QEMU reports (code << 1) | 1. */
__attribute__((noreturn)) void exit(int code);

/* The guest's entry point, called at CPL3 after the toolkit is set up. */
int main(void);

#endif
