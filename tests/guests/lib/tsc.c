#include "cmdline.h"
#include "kernel.h"
#include "tsc.h"

static uint64_t hz = TSC_DEFAULT_HZ;
static const char *source = "default";

static uint64_t from_cpuid(const char **src)
{
	uint32_t r[4];

	/* Hypervisor leaves: KVM/VMware-style TSC frequency in kHz. */
	cpuid(1, 0, r);
	if (r[2] & (1u << 31)) {
		cpuid(0x40000000, 0, r);
		if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
			cpuid(0x40000010, 0, r);
			if (r[0]) {
				*src = "cpuid 0x40000010";
				return (uint64_t)r[0] * 1000;
			}
		}
	}
	cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r); /* TSC = crystal (ECX) * EBX / EAX */
		if (r[0] && r[1] && r[2]) {
			*src = "cpuid 0x15";
			return (uint64_t)r[2] * r[1] / r[0];
		}
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, r); /* processor base frequency in MHz */
		if (r[0]) {
			*src = "cpuid 0x16";
			return (uint64_t)r[0] * 1000000;
		}
	}
	return 0;
}

void tsc_init(void)
{
	uint64_t khz = cmdline_uint("tsc_khz", 0), v;

	if (khz) {
		hz = khz * 1000;
		source = "cmdline";
	} else if ((v = from_cpuid(&source)) != 0) {
		hz = v;
	}
}

uint64_t tsc_hz(void)
{
	return hz;
}

const char *tsc_source(void)
{
	return source;
}

uint64_t ms_to_cycles(uint64_t ms)
{
	return ms * (hz / 1000);
}

void delay_ms(uint64_t ms)
{
	uint64_t d = deadline_ms(ms);

	while (!deadline_passed(d))
		cpu_relax();
}
