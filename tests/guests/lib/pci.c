#include "cmdline.h"
#include "console.h"
#include "pci.h"
#include "pio.h"

#define MEM_POOL_START 0xc0000000ull
#define MEM_POOL_END   0xfec00000ull /* the IOAPIC and LAPIC live above */
#define IO_POOL_START  0xc000u
#define IO_POOL_END    0x10000u

static struct pci_dev devs[PCI_MAX_DEVS];
static int ndevs = -1;

static uint32_t cfg_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 | (off & 0xfc);
}

static uint32_t cfg_read(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	outl(0xcf8, cfg_addr(bus, dev, fn, off));
	return inl(0xcfc);
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
	return cfg_read(d->bus, d->dev, d->fn, off);
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
	return pci_read32(d, off) >> ((off & 2) * 8);
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
	return pci_read32(d, off) >> ((off & 3) * 8);
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
	outl(0xcf8, cfg_addr(d->bus, d->dev, d->fn, off));
	outl(0xcfc, v);
}

/* A real 16-bit cycle: a read-modify-write of the dword would also write
 * STATUS back and clear its write-1-to-clear bits. */
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
	outl(0xcf8, cfg_addr(d->bus, d->dev, d->fn, off));
	outw(0xcfc + (off & 2), v);
}

void pci_enable(const struct pci_dev *d)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);

	pci_write16(d, PCI_COMMAND, cmd | PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER);
}

uint8_t pci_find_cap(const struct pci_dev *d, uint8_t cap_id, uint8_t after)
{
	uint8_t off;
	int guard = 48; /* a malformed list must not loop forever */

	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	off = after ? pci_read8(d, after + 1) : pci_read8(d, PCI_CAP_PTR);
	for (off &= 0xfc; off && guard--; off = pci_read8(d, off + 1) & 0xfc)
		if (pci_read8(d, off) == cap_id)
			return off;
	return 0;
}

/*
 * Sizes BAR i (writing all-ones and reading back the mask) with decoding
 * off, so the device never answers at the temporary address. Returns how
 * many BAR slots it used (2 for a 64-bit BAR).
 */
static int probe_bar(struct pci_dev *d, int i)
{
	uint8_t off = 0x10 + 4 * i;
	uint32_t orig = pci_read32(d, off), mask;
	struct pci_bar *b = &d->bar[i];

	pci_write32(d, off, 0xffffffff);
	mask = pci_read32(d, off);
	pci_write32(d, off, orig);
	if (!mask)
		return 1;

	if (orig & 1) {
		b->kind = BAR_IO;
		b->addr = orig & ~3u;
		b->size = (uint32_t)(~(mask & ~3u) + 1) & 0xffff;
		return 1;
	}
	b->prefetchable = orig & 8;
	b->addr = orig & ~0xfu;
	uint64_t full_mask = 0xffffffff00000000ull | (mask & ~0xfu);
	if (((orig >> 1) & 3) == 2 && i < 5) {
		uint32_t orig_hi = pci_read32(d, off + 4), mask_hi;

		pci_write32(d, off + 4, 0xffffffff);
		mask_hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, orig_hi);
		b->kind = BAR_MEM64;
		b->addr |= (uint64_t)orig_hi << 32;
		full_mask = (uint64_t)mask_hi << 32 | (mask & ~0xfu);
		b->size = ~full_mask + 1;
		return 2;
	}
	b->kind = BAR_MEM32;
	b->size = ~full_mask + 1;
	return 1;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* `pci_reassign` on the command line ignores the firmware's addresses:
 * a way to exercise our own assignment under QEMU, where SeaBIOS assigns. */
static bool reassign_all;

static bool usable(const struct pci_bar *b)
{
	if (!b->addr || reassign_all)
		return false;
	if (b->kind == BAR_IO)
		return true;
	return b->addr + b->size <= 0x100000000ull; /* our page tables end at 4 GiB */
}

static void assign(struct pci_dev *d, int i, uint64_t *mem_next, uint64_t *io_next)
{
	struct pci_bar *b = &d->bar[i];
	uint8_t off = 0x10 + 4 * i;
	uint64_t *next = b->kind == BAR_IO ? io_next : mem_next;
	uint64_t end = b->kind == BAR_IO ? IO_POOL_END : MEM_POOL_END;
	uint64_t a = align_up(*next, b->size);

	if (a + b->size > end) {
		printf("pci: no room for %02x.%x bar%d (%#lx bytes)\n", d->dev, d->fn, i, b->size);
		return;
	}
	*next = a + b->size;
	b->addr = a;
	b->assigned_by_us = true;
	pci_write32(d, off, (uint32_t)a | (b->kind == BAR_IO ? 1 : 0) |
				    (b->kind == BAR_MEM64 ? 4 : 0) | (b->prefetchable ? 8 : 0));
	if (b->kind == BAR_MEM64)
		pci_write32(d, off + 4, 0);
}

static void probe_function(struct pci_dev *d)
{
	uint32_t id = pci_read32(d, 0x00), class_rev = pci_read32(d, 0x08);
	uint32_t hdr = pci_read32(d, 0x0c), irq = pci_read32(d, 0x3c);

	d->vendor = id & 0xffff;
	d->device = id >> 16;
	d->class_code = class_rev >> 8;
	d->header_type = (hdr >> 16) & 0x7f;
	d->irq_line = irq & 0xff;
	d->irq_pin = (irq >> 8) & 0xff;
	if (d->header_type != 0)
		return; /* bridges: not on our buses */

	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM));
	for (int i = 0; i < 6;)
		i += probe_bar(d, i);
	pci_write16(d, PCI_COMMAND, cmd);
}

int pci_scan(struct pci_dev **out)
{
	if (ndevs >= 0) {
		*out = devs;
		return ndevs;
	}
	ndevs = 0;
	reassign_all = cmdline_has("pci_reassign");
	for (uint8_t dev = 0; dev < 32; dev++) {
		int nfn = 1;

		for (uint8_t fn = 0; fn < nfn && ndevs < PCI_MAX_DEVS; fn++) {
			uint32_t id = cfg_read(0, dev, fn, 0);

			if ((id & 0xffff) == 0xffff)
				continue;
			if (fn == 0 && (cfg_read(0, dev, 0, 0x0c) & 0x00800000))
				nfn = 8; /* multi-function device */
			struct pci_dev *d = &devs[ndevs++];
			d->bus = 0;
			d->dev = dev;
			d->fn = fn;
			probe_function(d);
		}
	}

	/* Place new BARs after everything already assigned, so nothing overlaps. */
	uint64_t mem_next = MEM_POOL_START, io_next = IO_POOL_START;
	for (int n = 0; n < ndevs; n++)
		for (int i = 0; i < 6; i++) {
			struct pci_bar *b = &devs[n].bar[i];
			uint64_t end = b->addr + b->size;

			if (b->kind == BAR_IO && usable(b) && end > io_next && end <= IO_POOL_END)
				io_next = end;
			if ((b->kind == BAR_MEM32 || b->kind == BAR_MEM64) && usable(b) &&
			    b->addr >= MEM_POOL_START && end <= MEM_POOL_END && end > mem_next)
				mem_next = end;
		}
	for (int n = 0; n < ndevs; n++) {
		struct pci_dev *d = &devs[n];
		uint16_t want = 0;

		for (int i = 0; i < 6; i++) {
			struct pci_bar *b = &d->bar[i];

			if (b->kind == BAR_NONE)
				continue;
			if (!usable(b))
				assign(d, i, &mem_next, &io_next);
			want |= b->kind == BAR_IO ? PCI_CMD_IO : PCI_CMD_MEM;
		}
		/* Decode what we (or the firmware) assigned, as firmware would. */
		uint16_t cmd = pci_read16(d, PCI_COMMAND);
		if ((cmd & want) != want)
			pci_write16(d, PCI_COMMAND, cmd | want);
	}
	*out = devs;
	return ndevs;
}

struct pci_dev *pci_find(uint16_t vendor, uint16_t device)
{
	struct pci_dev *all;
	int n = pci_scan(&all);

	for (int i = 0; i < n; i++)
		if (all[i].vendor == vendor && all[i].device == device)
			return &all[i];
	return NULL;
}
