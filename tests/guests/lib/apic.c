#include "apic.h"
#include "layout.h"
#include "mmio.h"
#include "pio.h"

#define LAPIC_ID  0x020
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN    0x10
#define IOAPIC_REDTBL 0x10 /* register index of GSI 0's low dword */

void lapic_enable(void)
{
	mmio_write32(LAPIC_BASE + LAPIC_TPR, 0);                    /* accept every priority */
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x100 | VEC_SPURIOUS); /* APIC software enable */
}

uint8_t lapic_id(void)
{
	return mmio_read32(LAPIC_BASE + LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

void ioapic_route(unsigned gsi, uint8_t vector, uint8_t dest, bool level, bool active_low)
{
	uint32_t lo = vector | (active_low ? 1u << 13 : 0) | (level ? 1u << 15 : 0);

	/* Fixed delivery, physical destination; high dword first, unmask last. */
	ioapic_write(IOAPIC_REDTBL + 2 * gsi + 1, (uint32_t)dest << 24);
	ioapic_write(IOAPIC_REDTBL + 2 * gsi, lo);
}

void ioapic_mask(unsigned gsi)
{
	ioapic_write(IOAPIC_REDTBL + 2 * gsi, 1u << 16);
}

void pic_mask_all(void)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}
