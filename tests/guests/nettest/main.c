/*
 * nettest.elf: a polled network test kernel for e1000 and virtio-net.
 *   nic=e1000|virtio role=tx|rx|txrx|echo|ping|responder|exitcost count= size= dst=
 *   batch= rx_batch= rx_read_reg=1 rx_read_reg_returns= rx_work_ns= gap_ns= delay_ns= ip= timeout_ms=
 *   start_timeout_ms= hold_ms= tsc_khz= window=1 run_ms= restarts=1 reload_at=
 *   (buffers in the crossover DMA window, BAR2 of either NIC, see window.h) (see the role
 *   files for what each does; rx_batch=, rx_read_reg= and rx_work_ns=, the driver's
 *   receive path for a realistic receiver, in nic.h)
 *   e1000 receive filter: ral0=MAC bam=0 promisc=1 (see e1000_probe); idle_poke=0: an
 *   idle e1000 receiver never reads STATUS (see e1000_rx_peek); notify_always=1: virtio-net
 *   notifies on every kick, ignoring VIRTQ_USED_F_NO_NOTIFY (see vq_kick)
 * Prints `nettest: nic=... mac=... link=up`, then the role's RESULT line.
 */
#include "frame.h"
#include "guest.h"
#include "nettest.h"

#define VENDOR_INTEL   0x8086
#define DEVICE_82540EM 0x100e
#define VENDOR_VIRTIO  0x1af4
#define DEVICE_VNET    0x1041

/* The NIC asked for with nic=, or the first one on the bus. */
static bool find_nic(struct nic *nic, const char *want)
{
	struct pci_dev *devs;
	int n = pci_scan(&devs);

	for (int i = 0; i < n; i++) {
		struct pci_dev *d = &devs[i];
		bool is_e1000 = d->vendor == VENDOR_INTEL && d->device == DEVICE_82540EM;
		bool is_vnet = d->vendor == VENDOR_VIRTIO && d->device == DEVICE_VNET;

		if (is_e1000 && (!*want || !strncmp(want, "e1000", 6)))
			return e1000_probe(nic, d);
		if (is_vnet && (!*want || !strncmp(want, "virtio", 7)))
			return virtio_net_probe(nic, d);
	}
	return false;
}

static void parse_options(struct options *o)
{
	char buf[32];

	o->count = cmdline_uint("count", 0);
	uint64_t size = cmdline_uint("size", 64);
	if (size < ETH_MIN_LEN || size > ETH_MAX_LEN) {
		printf("nettest: size=%lu out of [%u, %u], clamped\n", size, ETH_MIN_LEN, ETH_MAX_LEN);
		size = size < ETH_MIN_LEN ? ETH_MIN_LEN : ETH_MAX_LEN;
	}
	o->size = (uint16_t)size;
	o->batch = (unsigned)cmdline_uint("batch", 32);
	if (o->batch == 0)
		o->batch = 1;
	o->gap_ns = cmdline_uint("gap_ns", 0);
	o->delay_ns = cmdline_uint("delay_ns", 0);
	o->timeout_ms = cmdline_uint("timeout_ms", 10000);
	o->start_timeout_ms = cmdline_uint("start_timeout_ms", o->timeout_ms);
	o->hold_ms = cmdline_uint("hold_ms", 0);
	o->run_ms = cmdline_uint("run_ms", 0);
	o->restarts = cmdline_uint("restarts", 0) != 0;
	o->reload_at = cmdline_uint("reload_at", 0);
	o->have_dst = cmdline_mac("dst", o->dst);
	if (cmdline_get("ip", buf, sizeof(buf))) {
		if (!parse_ipv4(buf, o->ip))
			panic("nettest: ip=%s is not an IPv4 address", buf);
		o->have_ip = true;
	}
}

int main(void)
{
	char want[16] = "", role[16] = "", mac[18];
	struct options o = { 0 };
	struct nic nic = { 0 };

	cmdline_get("nic", want, sizeof(want));
	cmdline_get("role", role, sizeof(role));
	parse_options(&o);

	if (!find_nic(&nic, want)) {
		printf("nettest: no usable NIC%s%s\n", *want ? " for nic=" : "", want);
		return 1;
	}
	/* The link comes up when the peer does: part of the wait to start.
	 * Looked at once a millisecond: each look is an exit to the VMM, and
	 * a guest that waits must not take a core from the peer it waits for
	 * (on a two-core emulated host, 3,000-10,000 exits a second). */
	uint64_t deadline = deadline_ms(o.start_timeout_ms);
	while (!nic_link_up(&nic) && !deadline_passed(deadline))
		delay_ms(1);
	bool up = nic_link_up(&nic);
	format_mac(mac, nic.mac);
	printf("nettest: nic=%s mac=%s link=%s\n", nic.model, mac, up ? "up" : "down");
	printf("nettest: tsc_hz=%lu (%s)\n", tsc_hz(), tsc_source());
	if (!up)
		return 1;

	if (!strncmp(role, "tx", 3))
		return role_tx(&nic, &o);
	if (!strncmp(role, "rx", 3))
		return role_rx(&nic, &o);
	if (!strncmp(role, "echo", 5))
		return role_echo(&nic, &o);
	if (!strncmp(role, "ping", 5))
		return role_ping(&nic, &o);
	if (!strncmp(role, "responder", 10))
		return role_responder(&nic, &o);
	if (!strncmp(role, "txrx", 5))
		return role_txrx(&nic, &o);
	if (!strncmp(role, "exitcost", 9))
		return role_exitcost(&nic, &o);
	printf("nettest: role=%s unknown (tx, rx, txrx, echo, ping, responder, exitcost)\n", role);
	return 2;
}
