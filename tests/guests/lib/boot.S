/*
 * PVH entry: the VMM (xover, QEMU, Firecracker...) jumps here in 32-bit
 * protected mode with paging off, flat segments and EBX = physical address
 * of struct hvm_start_info. We switch to long mode with static identity
 * page tables and call kmain() at CPL0, which drops to CPL3.
 *
 * Everything here runs at CPL0, which the kvm_pvm emulator executes at about
 * 1 us per instruction, so the tables are built by the assembler, not by a
 * loop at run time.
 */
#include "layout.h"

/* The ELF note that makes this a PVH kernel (XEN_ELFNOTE_PHYS32_ENTRY). */
	.section .note.Xen, "a"
	.p2align 2
	.long 4                 /* namesz: "Xen\0" */
	.long 4                 /* descsz: a 32-bit physical address */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry

	.section .boot, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, pvh_start_info_paddr
	lgdt gdt_ptr
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $kstack_top, %esp

	/* Long mode: CR4.PAE, CR3, EFER.LME, then CR0.PG. */
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax
	movl %eax, %cr0
	ljmp $SEL_KCODE, $long_mode

	.code64
long_mode:
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movq $kstack_top, %rsp
	call kmain
1:	jmp 1b                  /* kmain never returns */

/*
 * GDT. The user segments are DPL3; the TSS descriptor is filled by kmain()
 * because its base is only known at link time as a 64-bit relocation.
 */
	.section .data
	.p2align 4
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* SEL_KCODE: 64-bit code, DPL0 */
	.quad 0x00cf92000000ffff        /* SEL_KDATA: data, DPL0 */
	.quad 0x00cff2000000ffff        /* SEL_UDATA: data, DPL3 */
	.quad 0x00affa000000ffff        /* SEL_UCODE: 64-bit code, DPL3 */
	.quad 0, 0                      /* SEL_TSS: 16-byte system descriptor */
gdt_end:
	.p2align 3
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt                       /* lgdt in 32-bit mode reads the low 4 bytes */

	.globl pvh_start_info_paddr
pvh_start_info_paddr:
	.long 0

/*
 * Identity map of the first 4 GiB with 2 MiB pages, all user-accessible so
 * that CPL3 code can touch RAM, DMA buffers and MMIO. The top GiB (PCI hole,
 * IOAPIC, LAPIC) is mapped uncached (PCD|PWT) so that we never depend on the
 * firmware having set up MTRRs. Accessed/dirty bits are preset so the CPU
 * (or the emulator) never has to write them back.
 */
#define PTE_TABLE  0x27                 /* P | RW | US | A */
#define PTE_2M     0xe7                 /* P | RW | US | A | D | PS */
#define PTE_2M_UC  (PTE_2M | 0x18)      /* + PWT | PCD */

	.section .data.pagetables, "aw"
	.p2align 12
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + PTE_TABLE
	.quad pd + 0x1000 + PTE_TABLE
	.quad pd + 0x2000 + PTE_TABLE
	.quad pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
pd:
	.set page, 0
	.rept 1536                      /* 0 .. 3 GiB: RAM */
	.quad (page << 21) + PTE_2M
	.set page, page + 1
	.endr
	.rept 512                       /* 3 .. 4 GiB: MMIO */
	.quad (page << 21) + PTE_2M_UC
	.set page, page + 1
	.endr

/* Stacks are not part of .bss: user_start() zeroes .bss while running on one. */
	.section .stack, "aw", @nobits
	.p2align 12
	.space KSTACK_SIZE
	.globl kstack_top
kstack_top:
	.space USTACK_SIZE
	.globl ustack_top
ustack_top:
	.space FAULT_STACK_SIZE
	.globl fault_stack_top
fault_stack_top:
