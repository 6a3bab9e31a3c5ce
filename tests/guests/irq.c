/*
 * Proves that a device interrupt reaches a guest handler through the
 * irqchip: the 16550's "transmitter holding register empty" interrupt on
 * ISA IRQ 4, routed by the IOAPIC (GSI 4, edge, active high) to VEC_UART
 * on this CPU's LAPIC, with the 8259s masked.
 */
#include "guest.h"

#define VEC_UART     0x34
#define UART_GSI     4
#define UART_IER     1
#define UART_IIR     2
#define UART_MCR     4
#define UART_LSR     5
#define IER_ETBEI    0x02
#define MCR_DTR_RTS  0x03
#define MCR_OUT2     0x08 /* gates the UART's IRQ line on PC hardware */

static volatile int got_vector = -1;

/* CPL0: clear the cause (read IIR and LSR, stop THRE interrupts), note it. */
static void uart_irq(unsigned vector)
{
	inb(COM1 + UART_IIR);
	inb(COM1 + UART_LSR);
	outb(COM1 + UART_IER, 0);
	got_vector = (int)vector;
}

int main(void)
{
	uint64_t timeout_ms = cmdline_uint("timeout_ms", 5000);

	pic_mask_all();
	lapic_enable();
	irq_set_handler(VEC_UART, uart_irq);
	ioapic_route(UART_GSI, VEC_UART, lapic_id(), false, false);
	irq_enable();

	/* THR is empty, so enabling ETBEI raises the interrupt at once. */
	outb(COM1 + UART_MCR, MCR_DTR_RTS | MCR_OUT2);
	outb(COM1 + UART_IER, IER_ETBEI);

	uint64_t deadline = deadline_ms(timeout_ms);
	while (got_vector < 0 && !deadline_passed(deadline))
		cpu_relax();
	irq_disable();
	ioapic_mask(UART_GSI);

	if (got_vector < 0) {
		printf("irq: timeout\n");
		return 1;
	}
	printf("irq: received vector %#x from IRQ4\n", got_vector);
	return 0;
}
