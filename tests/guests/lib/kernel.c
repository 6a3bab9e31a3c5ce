/*
 * CPL0 setup and trap dispatch. kmain() runs once, from boot.S, to load the
 * TSS and the IDT and drop to CPL3; trap_dispatch() runs for every
 * exception and interrupt. Both are emulated by kvm_pvm at ~1 us per
 * instruction, so they do as little as possible: the rest of the toolkit
 * initialises itself at CPL3 (start.c).
 */
#include <stdint.h>

#include "apic.h"
#include "console.h"
#include "kernel.h"

extern uint64_t gdt[];
extern char isr_stubs[], kstack_top[], ustack_top[], fault_stack_top[];
void enter_user(void (*rip)(void), void *rsp) __attribute__((noreturn));
void user_start(void) __attribute__((noreturn));
void kmain(void) __attribute__((noreturn));
void trap_dispatch(struct trap_frame *f);

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

/*
 * In .data, not .bss: user_start() zeroes .bss after these are live. The
 * same holds for every variable kmain() writes.
 */
static struct tss tss __attribute__((section(".data"), aligned(16)));
static struct idt_gate idt[256] __attribute__((section(".data"), aligned(16)));

/* Read and written at CPL3 as well: all pages are user-accessible. */
static irq_handler_t irq_handlers[256];
volatile uint32_t irq_count[256];
volatile uint32_t irq_last_vector;

/*
 * A double fault, an NMI or a machine check runs on a stack of its own (IST
 * 1): a fault that broke the kernel stack then still prints where it was,
 * instead of ending as a triple fault whose registers the host cannot show.
 */
static unsigned gate_stack(unsigned vec)
{
	return vec == 2 || vec == 8 || vec == 18 ? 1 : 0;
}

static void set_gate(unsigned vec, void *fn)
{
	uint64_t a = (uint64_t)fn;

	idt[vec] = (struct idt_gate){
		.offset_lo = (uint16_t)a,
		.selector = SEL_KCODE,
		.ist = (uint8_t)gate_stack(vec),
		.type_attr = 0x8e, /* present, DPL0, 64-bit interrupt gate */
		.offset_mid = (uint16_t)(a >> 16),
		.offset_hi = (uint32_t)(a >> 32),
	};
}

void kmain(void)
{
	uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;

	/* Interrupts from CPL3 switch to this stack. No I/O bitmap. */
	tss.rsp[0] = (uint64_t)kstack_top;
	tss.ist[0] = (uint64_t)fault_stack_top;
	tss.iomap_base = sizeof(tss);
	gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			   (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	asm volatile("ltr %w0" : : "r"(SEL_TSS));

	for (unsigned v = 0; v < 256; v++)
		set_gate(v, isr_stubs + 16 * v);

	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };
	asm volatile("lidt %0" : : "m"(idtr));

	/* -8: user_start is entered as if called, so the ABI's alignment holds. */
	enter_user(user_start, (void *)((uint64_t)ustack_top - 8));
}

void irq_set_handler(unsigned vector, irq_handler_t handler)
{
	irq_handlers[vector & 0xff] = handler;
}

static const char *const exception_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS",
	"#NP", "#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static __attribute__((noreturn)) void fault(struct trap_frame *f)
{
	uint64_t cr2;
	const char *name = exception_names[f->vector];

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	printf("FAULT: vector %lu %s error %#lx rip %#lx rsp %#lx cr2 %#lx cs %#lx\n",
	       f->vector, name ? name : "?", f->error, f->rip, f->rsp, cr2, f->cs);
	exit(EXIT_FAULT);
}

void trap_dispatch(struct trap_frame *f)
{
	unsigned v = (unsigned)f->vector;

	if (v == 13 && (f->cs & 3) && pio_emulate(f))
		return;
	if (v < 32)
		fault(f);
	if (v == VEC_SPURIOUS)
		return; /* a spurious interrupt takes no EOI */
	irq_count[v]++;
	irq_last_vector = v;
	if (irq_handlers[v])
		irq_handlers[v](v);
	lapic_eoi();
}
