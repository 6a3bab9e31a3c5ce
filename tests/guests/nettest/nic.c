/* Driver settings shared by the NIC drivers, read from the command line. */
#include "nic.h"

#include "guest.h"

unsigned nic_rx_batch(unsigned ring_size)
{
	uint64_t want = cmdline_uint("rx_batch", 32);

	if (want == 0)
		want = 1;
	return want > ring_size / 2 ? ring_size / 2 : (unsigned)want;
}

bool nic_rx_read_reg(void)
{
	return cmdline_uint("rx_read_reg", 0) != 0;
}

bool nic_rx_flush_return(void)
{
	static bool read;
	static uint64_t limit, done;

	if (!read) {
		limit = cmdline_uint("rx_read_reg_returns", 0);
		read = true;
	}
	return limit == 0 || done++ < limit;
}

uint64_t nic_rx_work_ticks(void)
{
	/* The same conversion as spin_ns() and gap_ns=: tsc_hz() is known from CPUID or tsc_khz=. */
	return cmdline_uint("rx_work_ns", 0) * (tsc_hz() / 1000000) / 1000;
}

void nic_rx_work(uint64_t ticks)
{
	uint64_t until = rdtsc() + ticks;

	while ((int64_t)(rdtsc() - until) < 0)
		cpu_relax();
}
