/* The boot information a PVH loader hands over in EBX (Xen's hvm_start_info). */
#ifndef GUEST_PVH_H
#define GUEST_PVH_H

#include <stdint.h>

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr; /* NUL-terminated, 0 if none */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 = RAM, as in E820 */
	uint32_t reserved;
};

/* Set by boot.S from EBX. */
extern uint32_t pvh_start_info_paddr;

#endif
