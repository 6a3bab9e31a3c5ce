/*
 * window=1: the crossover DMA window a NIC advertises as an extra memory
 * BAR (xover's mode=window). Its first half holds TX buffers, its second
 * RX buffers, slot k of each at offset k*WINDOW_SLOT: when two peers both
 * lay their rings out this way, a frame crosses without being copied.
 * The BAR after it is the window's ring area, where the descriptor rings
 * go (window_rings=0 keeps them in RAM): a window link shares only these
 * with the peer, never RAM.
 */
#ifndef NETTEST_WINDOW_H
#define NETTEST_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "dma.h"
#include "pci.h"

#define WINDOW_SLOT 2048

struct window {
	uint8_t *tx, *rx; /* the halves (guest-physical = virtual), NULL if none */
	uint64_t half;    /* bytes per half */
	struct dma_arena rings; /* the ring area; empty if none */
};

/* Finds the window in dev's BAR bar_index when the command line says
 * window=1 and it holds `slots` buffers per half, and its ring area in the
 * next BAR; false when there is no window. */
bool window_find(struct pci_dev *dev, unsigned bar_index, unsigned slots, struct window *w);

#endif
