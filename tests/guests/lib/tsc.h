/*
 * Time from the TSC, without any timer device. The frequency comes from
 * CPUID (hypervisor leaf 0x40000010, then leaves 0x15/0x16); when none of
 * them tells, we assume TSC_DEFAULT_HZ (2 GHz) — timeouts are then only
 * approximately right, which is all tests need. `tsc_khz=N` on the command
 * line overrides everything.
 */
#ifndef GUEST_TSC_H
#define GUEST_TSC_H

#include <stdbool.h>
#include <stdint.h>

#define TSC_DEFAULT_HZ 2000000000ull

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

void tsc_init(void);
uint64_t tsc_hz(void);
const char *tsc_source(void); /* where tsc_hz() came from, for logs */
uint64_t ms_to_cycles(uint64_t ms);

/* A deadline: deadline_ms(500) ... while (!deadline_passed(d)) ... */
static inline uint64_t deadline_ms(uint64_t ms)
{
	return rdtsc() + ms_to_cycles(ms);
}

static inline bool deadline_passed(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) >= 0;
}

void delay_ms(uint64_t ms);

#endif
