/*
 * The interrupt controllers: local APIC (EOI, enable), IOAPIC (route a GSI
 * to a vector) and the legacy 8259 pair (masked, so only the IOAPIC
 * delivers). All xAPIC MMIO, reachable from CPL3.
 */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_BASE  0xfee00000ull
#define IOAPIC_BASE 0xfec00000ull

void lapic_enable(void); /* software-enable with spurious vector 0xff */
uint8_t lapic_id(void);
void lapic_eoi(void);

/* Routes GSI gsi to vector on the LAPIC dest_apic_id, unmasked. */
void ioapic_route(unsigned gsi, uint8_t vector, uint8_t dest_apic_id, bool level, bool active_low);
void ioapic_mask(unsigned gsi);

void pic_mask_all(void);

#endif
