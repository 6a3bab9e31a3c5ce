/*
 * Intel 82540EM (8086:100E) driver: legacy descriptors, polled.
 *
 * Ring ownership is the classic one: RX descriptors [RDH, RDT) belong to the
 * device, the driver consumes from rx_next while DD is set and returns
 * buffers by moving RDT; TX descriptors [TDH, TDT) belong to the device,
 * the driver reclaims from tx_clean while DD is set. Every register write
 * is a VM exit, so RDT moves in batches and TDT once per tx_kick().
 */
#include "guest.h"
#include "nic.h"
#include "window.h"

#define REG_CTRL   0x0000
#define REG_STATUS 0x0008
#define REG_EERD   0x0014
#define REG_ICR    0x00c0
#define REG_IMC    0x00d8
#define REG_RCTL   0x0100
#define REG_TCTL   0x0400
#define REG_TIPG   0x0410
#define REG_RDBAL  0x2800
#define REG_RDBAH  0x2804
#define REG_RDLEN  0x2808
#define REG_RDH    0x2810
#define REG_RDT    0x2818
#define REG_TDBAL  0x3800
#define REG_TDBAH  0x3804
#define REG_TDLEN  0x3808
#define REG_TDH    0x3810
#define REG_TDT    0x3818
#define REG_MTA    0x5200
#define REG_RAL0   0x5400
#define REG_RAH0   0x5404

#define CTRL_ASDE  (1u << 5)
#define CTRL_SLU   (1u << 6)
#define CTRL_RST   (1u << 26)
#define STATUS_LU  (1u << 1)
#define EERD_START (1u << 0)
#define EERD_DONE  (1u << 4)
#define RCTL_EN    (1u << 1)
#define RCTL_UPE   (1u << 3)
#define RCTL_MPE   (1u << 4)
#define RCTL_BAM   (1u << 15)
#define RCTL_SECRC (1u << 26) /* BSIZE bits 17:16 = 0: 2048-byte buffers */
#define TCTL_EN    (1u << 1)
#define TCTL_PSP   (1u << 3)
#define TCTL_CT    (0x10u << 4)
#define TCTL_COLD  (0x40u << 12)
#define RAH_AV     (1u << 31)

#define DESC_DD    0x01
#define RX_EOP     0x02
#define TX_CMD_EOP  0x01
#define TX_CMD_IFCS 0x02
#define TX_CMD_RS   0x08

#define RING_SIZE 256 /* both rings; a multiple of 8 as RDLEN/TDLEN require */
#define BUF_SIZE  2048

struct rx_desc {
	uint64_t addr;
	uint16_t length;
	uint16_t csum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
};

struct tx_desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso;
	uint8_t cmd;
	uint8_t status;
	uint8_t css;
	uint16_t special;
};

static struct {
	uint64_t regs;
	volatile struct rx_desc *rx;
	volatile struct tx_desc *tx;
	uint8_t *rx_buf, *tx_buf;
	unsigned rx_next, rx_unreturned;
	unsigned rx_batch; /* return RX buffers to the device this many at a time */
	bool rx_read_reg;  /* rx_read_reg=1: read STATUS after each RDT write */
	bool idle_poke;    /* idle_poke=0: an idle receiver never reads STATUS */
	uint64_t rx_work;  /* rx_work_ns= in TSC ticks, spent on every received frame */
	unsigned tx_tail, tx_clean; /* free-running; slot = index % RING_SIZE */
	uint64_t next_poke;
	struct window win; /* window=1: buffers in the crossover DMA window (BAR2) */
	uint32_t rctl_filter; /* BAM, unless bam=0; UPE|MPE with promisc=1 */
} e;

static uint32_t rd(uint32_t reg) { return mmio_read32(e.regs + reg); }
static void wr(uint32_t reg, uint32_t v) { mmio_write32(e.regs + reg, v); }

/* EEPROM word through EERD; -1 if the device never says DONE. */
static int eeprom_read(uint8_t word)
{
	uint64_t deadline = deadline_ms(100);

	wr(REG_EERD, (uint32_t)word << 8 | EERD_START);
	while (!deadline_passed(deadline)) {
		uint32_t v = rd(REG_EERD);

		if (v & EERD_DONE)
			return v >> 16;
	}
	return -1;
}

static void read_mac(uint8_t mac[6])
{
	for (int i = 0; i < 3; i++) {
		int w = eeprom_read(i);

		if (w < 0) { /* no EERD: trust what the device loaded into RAL0/RAH0 */
			uint32_t lo = rd(REG_RAL0), hi = rd(REG_RAH0);

			for (int b = 0; b < 4; b++)
				mac[b] = lo >> (8 * b);
			mac[4] = hi;
			mac[5] = hi >> 8;
			return;
		}
		mac[2 * i] = w;
		mac[2 * i + 1] = w >> 8;
	}
}

static bool e1000_link_up(struct nic *nic)
{
	nic->idle_reads++;
	return rd(REG_STATUS) & STATUS_LU;
}

static uint8_t *e1000_tx_slot(struct nic *nic)
{
	(void)nic;
	if (e.tx_tail - e.tx_clean >= RING_SIZE - 1)
		return NULL; /* TDT may never catch up with TDH */
	return e.tx_buf + (e.tx_tail % RING_SIZE) * BUF_SIZE;
}

static void e1000_tx_commit(struct nic *nic, uint16_t len)
{
	volatile struct tx_desc *d = &e.tx[e.tx_tail % RING_SIZE];

	(void)nic;
	d->length = len;
	d->status = 0;
	d->cmd = TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS;
	e.tx_tail++;
}

static void e1000_tx_kick(struct nic *nic)
{
	(void)nic;
	dma_barrier();
	wr(REG_TDT, e.tx_tail % RING_SIZE);
}

static unsigned e1000_tx_pending(struct nic *nic)
{
	(void)nic;
	while (e.tx_clean != e.tx_tail && (e.tx[e.tx_clean % RING_SIZE].status & DESC_DD))
		e.tx_clean++;
	return e.tx_tail - e.tx_clean;
}

static const uint8_t *e1000_rx_peek(struct nic *nic, uint16_t *len)
{
	volatile struct rx_desc *d = &e.rx[e.rx_next];

	if (!(d->status & DESC_DD)) {
		/*
		 * Seen with QEMU 7.2 here: once the ring has been full, QEMU
		 * resumes reading its backend only after some later exit of
		 * ours (the RDT write alone does not do it). So an idle
		 * receiver reads STATUS once a millisecond: one exit per ms of
		 * idleness, none while frames flow.
		 */
		if (e.idle_poke && deadline_passed(e.next_poke)) {
			nic->idle_reads++;
			rd(REG_STATUS);
			e.next_poke = deadline_ms(1);
		}
		return NULL;
	}
	*len = d->length;
	return e.rx_buf + e.rx_next * BUF_SIZE;
}

static void e1000_read_reg(struct nic *nic)
{
	(void)nic;
	rd(REG_STATUS);
}

static void e1000_rx_done(struct nic *nic)
{
	if (e.rx_work)
		nic_rx_work(e.rx_work); /* the frame is dealt with before its buffer goes back */
	e.rx[e.rx_next].status = 0;
	/* RDT points at the last descriptor we gave back (one slot stays empty). */
	unsigned returned = e.rx_next;
	e.rx_next = (e.rx_next + 1) % RING_SIZE;
	if (++e.rx_unreturned >= e.rx_batch) {
		dma_barrier();
		wr(REG_RDT, returned);
		/*
		 * The RDT write is posted; a read of the same device cannot
		 * pass it, so once STATUS answers the NIC has the buffers.
		 * Real e1000 drivers flush their doorbells this way.
		 */
		if (e.rx_read_reg && nic_rx_flush_return())
			e1000_read_reg(nic);
		e.rx_unreturned = 0;
	}
}

static void e1000_dump(struct nic *nic)
{
	(void)nic;
	printf("e1000: STATUS=%#x RDH=%u RDT=%u rx_next=%u TDH=%u TDT=%u tx_clean=%u tx_tail=%u\n",
	       rd(REG_STATUS), rd(REG_RDH), rd(REG_RDT), e.rx_next, rd(REG_TDH), rd(REG_TDT),
	       e.tx_clean % RING_SIZE, e.tx_tail % RING_SIZE);
	printf("e1000: rx[rx_next] status=%#x len=%u, rx[0] status=%#x len=%u\n", e.rx[e.rx_next].status,
	       e.rx[e.rx_next].length, e.rx[0].status, e.rx[0].length);
}

static const struct nic_ops e1000_ops = {
	.link_up = e1000_link_up,
	.tx_slot = e1000_tx_slot,
	.tx_commit = e1000_tx_commit,
	.tx_kick = e1000_tx_kick,
	.tx_pending = e1000_tx_pending,
	.rx_peek = e1000_rx_peek,
	.rx_done = e1000_rx_done,
	.dump = e1000_dump,
	.read_reg = e1000_read_reg,
	.probe = e1000_probe,
};

static void setup_rx(void)
{
	e.rx = dma_alloc_in(&e.win.rings, RING_SIZE * sizeof(struct rx_desc), 128);
	e.rx_buf = e.win.rx ? e.win.rx : dma_alloc(RING_SIZE * BUF_SIZE, 4096);
	for (unsigned i = 0; i < RING_SIZE; i++)
		e.rx[i].addr = dma_addr(e.rx_buf + i * BUF_SIZE);
	wr(REG_RDBAL, (uint32_t)dma_addr(e.rx));
	wr(REG_RDBAH, (uint32_t)(dma_addr(e.rx) >> 32));
	wr(REG_RDLEN, RING_SIZE * sizeof(struct rx_desc));
	wr(REG_RDH, 0);
	wr(REG_RDT, RING_SIZE - 1);
	wr(REG_RCTL, RCTL_EN | e.rctl_filter | RCTL_SECRC);
}

static void setup_tx(void)
{
	e.tx = dma_alloc_in(&e.win.rings, RING_SIZE * sizeof(struct tx_desc), 128);
	e.tx_buf = e.win.tx ? e.win.tx : dma_alloc(RING_SIZE * BUF_SIZE, 4096);
	for (unsigned i = 0; i < RING_SIZE; i++)
		e.tx[i].addr = dma_addr(e.tx_buf + i * BUF_SIZE);
	wr(REG_TDBAL, (uint32_t)dma_addr(e.tx));
	wr(REG_TDBAH, (uint32_t)(dma_addr(e.tx) >> 32));
	wr(REG_TDLEN, RING_SIZE * sizeof(struct tx_desc));
	wr(REG_TDH, 0);
	wr(REG_TDT, 0);
	wr(REG_TIPG, 10 | 8 << 10 | 6 << 20); /* the 82540EM's recommended IPG */
	wr(REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
}

bool e1000_probe(struct nic *nic, struct pci_dev *dev)
{
	memset(&e, 0, sizeof(e)); /* a reload probes again */
	if (dev->bar[0].kind != BAR_MEM32 && dev->bar[0].kind != BAR_MEM64)
		return false;
	e.regs = dev->bar[0].addr;
	pci_enable(dev);

	wr(REG_IMC, 0xffffffff); /* polled: no interrupts at all */
	wr(REG_CTRL, rd(REG_CTRL) | CTRL_RST);
	uint64_t deadline = deadline_ms(100);
	while ((rd(REG_CTRL) & CTRL_RST) && !deadline_passed(deadline))
		cpu_relax();
	wr(REG_IMC, 0xffffffff); /* reset re-enabled nothing, but be sure */
	rd(REG_ICR);
	wr(REG_CTRL, (rd(REG_CTRL) | CTRL_SLU | CTRL_ASDE) & ~CTRL_RST);

	/*
	 * Receive filter options, to test that a device honours them:
	 * ral0=MAC listens on another address than the EEPROM's (a guest
	 * that changed its MAC), bam=0 refuses broadcast, promisc=1 takes
	 * every unicast and multicast frame.
	 */
	read_mac(nic->mac);
	cmdline_mac("ral0", nic->mac);
	e.rctl_filter = cmdline_uint("bam", 1) ? RCTL_BAM : 0;
	if (cmdline_uint("promisc", 0))
		e.rctl_filter |= RCTL_UPE | RCTL_MPE;
	wr(REG_RAL0, nic->mac[0] | nic->mac[1] << 8 | nic->mac[2] << 16 | (uint32_t)nic->mac[3] << 24);
	wr(REG_RAH0, nic->mac[4] | nic->mac[5] << 8 | RAH_AV);
	for (int i = 0; i < 128; i++)
		wr(REG_MTA + 4 * i, 0);

	e.rx_batch = nic_rx_batch(RING_SIZE);
	e.rx_read_reg = nic_rx_read_reg();
	e.idle_poke = cmdline_uint("idle_poke", 1) != 0;
	e.rx_work = nic_rx_work_ticks();
	window_find(dev, 2, RING_SIZE, &e.win); /* slot k at k*BUF_SIZE, BUF_SIZE == WINDOW_SLOT */
	setup_rx();
	setup_tx();
	nic->model = "e1000";
	nic->ops = &e1000_ops;
	nic->dev = dev;
	return true;
}
