/*
 * The first code at CPL3 (entered from kmain by iretq): sets up the parts of
 * the toolkit that need no privilege — .bss, console, command line, DMA
 * memory, TSC — and runs main(). Doing this here rather than in kmain()
 * keeps it out of kvm_pvm's slow CPL0 emulation.
 */
#include "cmdline.h"
#include "console.h"
#include "dma.h"
#include "kernel.h"
#include "mem.h"
#include "pvh.h"
#include "tsc.h"

extern char __bss_start[], __bss_end[], _end[];
void user_start(void) __attribute__((noreturn));

#define DEFAULT_RAM_TOP (32ull << 20) /* if the loader gives no memory map */
#define RAM_TOP_LIMIT   (3ull << 30)  /* stay below the MMIO hole */

/* The top of the RAM region holding the kernel, from the PVH memory map. */
static uint64_t ram_top(const struct hvm_start_info *si)
{
	uint64_t kernel_end = (uint64_t)_end;

	if (!si || si->version < 1 || !si->memmap_paddr)
		return DEFAULT_RAM_TOP;
	const struct hvm_memmap_entry *e = (const void *)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries; i++) {
		uint64_t end = e[i].addr + e[i].size;

		if (e[i].type == 1 && e[i].addr <= kernel_end && end > kernel_end)
			return end < RAM_TOP_LIMIT ? end : RAM_TOP_LIMIT;
	}
	return DEFAULT_RAM_TOP;
}

void user_start(void)
{
	const struct hvm_start_info *si = (const void *)(uint64_t)pvh_start_info_paddr;

	memset(__bss_start, 0, __bss_end - __bss_start);
	serial_init();
	if (si && si->magic != HVM_START_MAGIC) {
		printf("boot: bad hvm_start_info magic %#x at %p\n", si->magic, si);
		si = NULL;
	}
	cmdline_init(si && si->cmdline_paddr ? (const char *)si->cmdline_paddr : NULL);
	dma_init(((uint64_t)_end + 0xfff) & ~0xfffull, ram_top(si));
	tsc_init();
	exit(main());
}
