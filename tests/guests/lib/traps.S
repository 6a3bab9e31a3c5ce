/*
 * CPL0 entry points: one 16-byte stub per IDT vector, the common save/restore
 * path into trap_dispatch(), and the iretq into CPL3.
 *
 * CPL0 is leaving-only-by-iretq territory: the kvm_pvm emulator cannot run a
 * SYSRET or 32-bit IRET, so every path back out ends in iretq.
 */
#include "layout.h"

	.text
	.code64

/*
 * Vector stubs, 16 bytes each, so kernel.c finds stub v at isr_stubs + 16*v.
 * Vectors without a CPU error code push a zero, so every frame looks alike.
 */
	.p2align 4
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.p2align 4
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

/* Saves the general registers as a struct trap_frame (see kernel.h). */
isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp          /* vector and error code */
	iretq

	.text
/*
 * enter_user(rip, rsp): the one-way trip to CPL3 with interrupts off.
 * IOPL stays 0, so port I/O and sti/cli at CPL3 trap to pio_emulate().
 */
	.globl enter_user
enter_user:
	movl $SEL_UDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	pushq $SEL_UDATA        /* SS */
	pushq %rsi              /* RSP */
	pushq $0x2              /* RFLAGS: IF=0, IOPL=0 */
	pushq $SEL_UCODE        /* CS */
	pushq %rdi              /* RIP */
	iretq
