/*
 * PCI on bus 0 through configuration mechanism #1. pci_scan() finds every
 * function, sizes its BARs and keeps the addresses the VMM or firmware
 * assigned; a BAR left at 0 (or placed above 4 GiB, outside our page
 * tables) gets an address from 0xC0000000 (memory) or 0xC000 (I/O);
 * `pci_reassign` on the command line reassigns every BAR (for testing).
 * Config accesses are slow traps (~90 us under kvm_pvm): scan once.
 */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_MAX_DEVS 32

#define PCI_COMMAND      0x04
#define PCI_STATUS       0x06
#define PCI_CAP_PTR      0x34
#define PCI_CMD_IO       0x1
#define PCI_CMD_MEM      0x2
#define PCI_CMD_MASTER   0x4
#define PCI_STATUS_CAPS  0x10

enum bar_kind { BAR_NONE, BAR_IO, BAR_MEM32, BAR_MEM64 };

struct pci_bar {
	enum bar_kind kind;
	bool prefetchable;
	bool assigned_by_us;
	uint64_t addr;
	uint64_t size;
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
	uint8_t header_type;
	uint8_t irq_line, irq_pin;
	struct pci_bar bar[6];
};

/* Scans bus 0 (once; later calls return the cached result). */
int pci_scan(struct pci_dev **devs);
/* The first function with this vendor/device, or NULL. */
struct pci_dev *pci_find(uint16_t vendor, uint16_t device);

uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);

/* Memory + I/O decoding and bus mastering (drivers call this before DMA). */
void pci_enable(const struct pci_dev *d);
/* Walks the capability list: offset of the next capability with this ID after `after` (0: from the start), 0 if none. */
uint8_t pci_find_cap(const struct pci_dev *d, uint8_t cap_id, uint8_t after);

#endif
