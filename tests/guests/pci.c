/* Lists bus 0 with the BAR addresses the VMM (or the toolkit) assigned. */
#include "guest.h"

int main(void)
{
	struct pci_dev *devs;
	int n = pci_scan(&devs);

	for (int i = 0; i < n; i++) {
		struct pci_dev *d = &devs[i];

		printf("pci %02x:%02x.%x %04x:%04x class %06x", d->bus, d->dev, d->fn, d->vendor,
		       d->device, d->class_code);
		for (int b = 0; b < 6; b++) {
			struct pci_bar *bar = &d->bar[b];

			if (bar->kind == BAR_NONE)
				continue;
			printf(" bar%d=%s%#lx/%#lx%s", b, bar->kind == BAR_IO ? "io:" : "", bar->addr,
			       bar->size, bar->assigned_by_us ? "*" : "");
		}
		printf("\n");
	}
	printf("pci: %d devices\n", n);
	return 0;
}
