/*
 * A bump allocator for memory that devices read and write. RAM is identity
 * mapped, so a pointer is also the guest-physical address a device needs.
 * Nothing is ever freed: a test kernel allocates its rings once.
 */
#ifndef GUEST_DMA_H
#define GUEST_DMA_H

#include <stddef.h>
#include <stdint.h>

void dma_init(uint64_t start, uint64_t end);
/* Zeroed, aligned to align (a power of two); panics when RAM runs out. */
void *dma_alloc(size_t size, size_t align);

/*
 * A fixed piece of device-reachable memory carved by a bump allocator of
 * its own (a NIC's ring area). dma_alloc_in takes from it while it has
 * room and from dma_alloc otherwise (a NULL or empty arena included).
 */
struct dma_arena {
	uint8_t *base;
	size_t size, used;
};
void *dma_alloc_in(struct dma_arena *a, size_t size, size_t align);

static inline uint64_t dma_addr(const volatile void *p)
{
	return (uint64_t)p;
}

#endif
