#include "window.h"

#include "guest.h"

bool window_find(struct pci_dev *dev, unsigned bar_index, unsigned slots, struct window *w)
{
	struct pci_bar *bar = &dev->bar[bar_index];

	w->tx = w->rx = 0;
	w->half = 0;
	w->rings = (struct dma_arena){ 0 };
	if (!cmdline_has("window") || cmdline_uint("window", 1) == 0)
		return false;
	if ((bar->kind != BAR_MEM32 && bar->kind != BAR_MEM64) || bar->addr == 0 ||
	    bar->size / 2 < (uint64_t)slots * WINDOW_SLOT || bar->addr + bar->size > (4ull << 30)) {
		printf("nettest: window=1 but BAR%u is no usable DMA window (size %lu)\n", bar_index,
		       bar->size);
		return false;
	}
	w->half = bar->size / 2;
	w->tx = (uint8_t *)bar->addr;
	w->rx = (uint8_t *)(bar->addr + w->half);
	printf("nettest: window at 0x%lx, %lu bytes per half\n", bar->addr, w->half);

	struct pci_bar *rings = bar_index + 1 < 6 ? &dev->bar[bar_index + 1] : 0;
	if (cmdline_uint("window_rings", 1) == 0) {
		printf("nettest: rings in RAM (window_rings=0)\n");
	} else if (rings && (rings->kind == BAR_MEM32 || rings->kind == BAR_MEM64) && rings->addr != 0 &&
		   rings->size != 0 && rings->addr + rings->size <= (4ull << 30)) {
		w->rings.base = (uint8_t *)rings->addr;
		w->rings.size = rings->size;
		printf("nettest: rings in the ring area at 0x%lx (%lu bytes)\n", rings->addr, rings->size);
	} else {
		printf("nettest: no ring area in BAR%u; rings in RAM\n", bar_index + 1);
	}
	return true;
}
