#include "console.h"
#include "dma.h"
#include "mem.h"

static uint64_t next, limit;

void dma_init(uint64_t start, uint64_t end)
{
	next = start;
	limit = end;
}

void *dma_alloc(size_t size, size_t align)
{
	uint64_t p = (next + align - 1) & ~(uint64_t)(align - 1);

	if (p + size > limit || p + size < p)
		panic("dma_alloc: out of memory (%zu bytes, %lu left)", size,
		      limit > next ? limit - next : 0);
	next = p + size;
	return memset((void *)p, 0, size);
}

void *dma_alloc_in(struct dma_arena *a, size_t size, size_t align)
{
	if (!a || !a->base)
		return dma_alloc(size, align);
	size_t at = (a->used + align - 1) & ~(align - 1);
	if (at > a->size || size > a->size - at)
		return dma_alloc(size, align);
	a->used = at + size;
	return memset(a->base + at, 0, size);
}
