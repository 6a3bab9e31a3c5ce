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
