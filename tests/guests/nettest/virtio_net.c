/*
 * virtio-net over modern virtio-pci (1AF4:1041), polled split virtqueues.
 *
 * Queue 0 receives, queue 1 transmits. Descriptor i of each queue always
 * points at buffer i, so a buffer is identified by its descriptor id and
 * nothing is allocated per frame. Every frame is preceded by the 12-byte
 * virtio_net_hdr of VERSION_1 (all zero on TX: no offloads negotiated).
 * Notifications are MMIO writes to the notify BAR — the only exits. As
 * Linux and DPDK do, a queue is not notified while the device says it
 * does not need it (VIRTQ_USED_F_NO_NOTIFY); notify_always=1 notifies on
 * every kick, as a driver that ignores the flag would.
 *
 * window=1: the buffers live in the crossover DMA window (BAR2, see
 * window.h): TX buffer k (header + frame) at TX half + k*2048, RX buffer k
 * at RX half + k*2048. A TX head then stays with the device until the
 * peer's guest gives its RX buffer k back, so TX completions may come out
 * of order: each TX slot is tracked by its used id.
 */
#include "guest.h"
#include "nic.h"
#include "window.h"

#define PCI_CAP_VENDOR 0x09
#define CFG_COMMON     1
#define CFG_NOTIFY     2
#define CFG_DEVICE     4

/* Common configuration structure offsets. */
#define COMMON_DFSELECT   0x00
#define COMMON_DF         0x04
#define COMMON_GFSELECT   0x08
#define COMMON_GF         0x0c
#define COMMON_STATUS     0x14
#define COMMON_Q_SELECT   0x16
#define COMMON_Q_SIZE     0x18
#define COMMON_Q_ENABLE   0x1c
#define COMMON_Q_NOFF     0x1e
#define COMMON_Q_DESC     0x20
#define COMMON_Q_AVAIL    0x28
#define COMMON_Q_USED     0x30

#define STATUS_ACK         1
#define STATUS_DRIVER      2
#define STATUS_DRIVER_OK   4
#define STATUS_FEATURES_OK 8
#define STATUS_FAILED      0x80

#define F_MAC       (1ull << 5)
#define F_STATUS    (1ull << 16)
#define F_VERSION_1 (1ull << 32)

#define NET_S_LINK_UP 1
#define DESC_F_WRITE  2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY     1

#define QSIZE       256
#define BUF_SIZE    2048
#define HDR_LEN     12

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QSIZE];
	uint16_t used_event;
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[QSIZE];
	uint16_t avail_event;
};

struct vq {
	unsigned size;
	volatile struct vq_desc *desc;
	volatile struct vq_avail *avail;
	volatile struct vq_used *used;
	uint8_t *buf;
	uint64_t notify; /* MMIO address of this queue's doorbell */
	uint16_t index;
	uint16_t avail_idx; /* ours, published to avail->idx on kick */
	uint16_t used_seen; /* next used entry to look at */
	unsigned unpublished;
	unsigned batch; /* RX: publish returned buffers this many at a time */
};

static struct {
	uint64_t common, device, notify_base;
	uint32_t notify_mult;
	uint64_t features;
	struct vq rx, tx;
	struct window win;           /* window=1: buffers in the DMA window */
	uint8_t tx_busy[QSIZE];      /* the device holds TX slot i */
	unsigned tx_outstanding;
	bool rx_read_reg;            /* rx_read_reg=1: read device_status after each RX notify */
	bool notify_always;          /* notify_always=1: ignore VIRTQ_USED_F_NO_NOTIFY */
	uint64_t rx_work;            /* rx_work_ns= in TSC ticks, spent on every received frame */
} v;

/* Where a virtio capability of this type points, as an address; 0 if none. */
static uint64_t find_cfg(struct pci_dev *dev, uint8_t type, uint8_t *cap_out)
{
	for (uint8_t cap = pci_find_cap(dev, PCI_CAP_VENDOR, 0); cap;
	     cap = pci_find_cap(dev, PCI_CAP_VENDOR, cap)) {
		if (pci_read8(dev, cap + 3) != type)
			continue;
		uint8_t bar = pci_read8(dev, cap + 4);
		if (bar > 5 || dev->bar[bar].kind == BAR_NONE || dev->bar[bar].kind == BAR_IO)
			continue;
		if (cap_out)
			*cap_out = cap;
		return dev->bar[bar].addr + pci_read32(dev, cap + 8);
	}
	return 0;
}

/* Publishes the new buffers; true if it notified the device. */
static bool vq_kick(struct vq *q)
{
	dma_barrier();
	q->avail->idx = q->avail_idx;
	q->unpublished = 0;
	/*
	 * The device clears NO_NOTIFY and then reads avail->idx; we store
	 * avail->idx and then read the flag: with a full fence on each side,
	 * at least one of us sees the other.
	 */
	asm volatile("mfence" ::: "memory");
	if (!v.notify_always && (q->used->flags & USED_F_NO_NOTIFY))
		return false;
	mmio_write16(q->notify, q->index);
	return true;
}

static bool vq_setup(struct vq *q, uint16_t index, bool device_writes)
{
	mmio_write16(v.common + COMMON_Q_SELECT, index);
	unsigned max = mmio_read16(v.common + COMMON_Q_SIZE);
	if (max == 0)
		return false;
	q->size = max < QSIZE ? max : QSIZE;
	if (q->size & (q->size - 1))
		return false; /* split rings need a power of two */
	mmio_write16(v.common + COMMON_Q_SIZE, q->size);
	q->index = index;
	q->desc = dma_alloc(sizeof(struct vq_desc) * QSIZE, 16);
	q->avail = dma_alloc(sizeof(struct vq_avail), 2);
	q->used = dma_alloc(sizeof(struct vq_used), 4);
	q->avail->flags = AVAIL_F_NO_INTERRUPT; /* polled: interrupts are wasted work */
	uint8_t *window_half = device_writes ? v.win.rx : v.win.tx;
	q->buf = window_half ? window_half : dma_alloc(QSIZE * BUF_SIZE, 4096);
	for (unsigned i = 0; i < q->size; i++) {
		q->desc[i].addr = dma_addr(q->buf + i * BUF_SIZE);
		q->desc[i].len = BUF_SIZE;
		q->desc[i].flags = device_writes ? DESC_F_WRITE : 0;
	}
	mmio_write64(v.common + COMMON_Q_DESC, dma_addr(q->desc));
	mmio_write64(v.common + COMMON_Q_AVAIL, dma_addr(q->avail));
	mmio_write64(v.common + COMMON_Q_USED, dma_addr(q->used));
	q->notify = v.notify_base + (uint64_t)mmio_read16(v.common + COMMON_Q_NOFF) * v.notify_mult;
	mmio_write16(v.common + COMMON_Q_ENABLE, 1);
	return true;
}

static bool vnet_link_up(struct nic *nic)
{
	if (!(v.features & F_STATUS))
		return true; /* no status field: the link is always up */
	nic->idle_reads++;
	return mmio_read16(v.device + 6) & NET_S_LINK_UP;
}

static uint8_t *vnet_tx_slot(struct nic *nic)
{
	(void)nic;
	if (v.tx_busy[v.tx.avail_idx % v.tx.size])
		return NULL;
	return v.tx.buf + (v.tx.avail_idx % v.tx.size) * BUF_SIZE + HDR_LEN;
}

static void vnet_tx_commit(struct nic *nic, uint16_t len)
{
	unsigned slot = v.tx.avail_idx % v.tx.size;

	(void)nic;
	memset(v.tx.buf + slot * BUF_SIZE, 0, HDR_LEN);
	v.tx.desc[slot].len = HDR_LEN + len;
	v.tx.avail->ring[slot] = slot;
	v.tx.avail_idx++;
	v.tx_busy[slot] = 1;
	v.tx_outstanding++;
}

static void vnet_tx_kick(struct nic *nic)
{
	(void)nic;
	vq_kick(&v.tx);
}

/* Reaps used TX entries by id: window mode completes them out of order. */
static unsigned vnet_tx_pending(struct nic *nic)
{
	uint16_t used = v.tx.used->idx;

	(void)nic;
	while (v.tx.used_seen != used) {
		uint32_t id = v.tx.used->ring[v.tx.used_seen % v.tx.size].id;

		if (id >= v.tx.size || !v.tx_busy[id])
			panic("virtio-net: bad TX used entry id=%u", id);
		v.tx_busy[id] = 0;
		v.tx_outstanding--;
		v.tx.used_seen++;
	}
	return v.tx_outstanding;
}

static const uint8_t *vnet_rx_peek(struct nic *nic, uint16_t *len)
{
	(void)nic;
	if (v.rx.used->idx == v.rx.used_seen)
		return NULL;
	volatile struct vq_used_elem *u = &v.rx.used->ring[v.rx.used_seen % v.rx.size];
	uint32_t id = u->id, n = u->len;
	if (id >= v.rx.size || n < HDR_LEN)
		panic("virtio-net: bad used entry id=%u len=%u", id, n);
	*len = n - HDR_LEN;
	return v.rx.buf + id * BUF_SIZE + HDR_LEN;
}

/*
 * device_status in the common config is what a driver can read at any
 * time without side effects (a read of the ISR would also clear it).
 */
static void vnet_read_reg(struct nic *nic)
{
	(void)nic;
	mmio_read8(v.common + COMMON_STATUS);
}

static void vnet_rx_done(struct nic *nic)
{
	uint32_t id = v.rx.used->ring[v.rx.used_seen % v.rx.size].id;

	if (v.rx_work)
		nic_rx_work(v.rx_work); /* the frame is dealt with before its buffer goes back */
	v.rx.used_seen++;
	v.rx.avail->ring[v.rx.avail_idx % v.rx.size] = id;
	v.rx.avail_idx++;
	if (++v.rx.unpublished >= v.rx.batch) {
		/*
		 * The notify write is posted. A read from the same function
		 * cannot pass it, so this one returns only once the device
		 * has seen the notify.
		 */
		if (vq_kick(&v.rx) && v.rx_read_reg && nic_rx_flush_return())
			vnet_read_reg(nic);
	}
}

static void vnet_dump(struct nic *nic)
{
	(void)nic;
	printf("virtio-net: status=%#x rx avail=%u used=%u seen=%u tx avail=%u used=%u seen=%u\n",
	       mmio_read8(v.common + COMMON_STATUS), v.rx.avail_idx, v.rx.used->idx,
	       v.rx.used_seen, v.tx.avail_idx, v.tx.used->idx, v.tx.used_seen);
}

static const struct nic_ops vnet_ops = {
	.link_up = vnet_link_up,
	.tx_slot = vnet_tx_slot,
	.tx_commit = vnet_tx_commit,
	.tx_kick = vnet_tx_kick,
	.tx_pending = vnet_tx_pending,
	.rx_peek = vnet_rx_peek,
	.rx_done = vnet_rx_done,
	.dump = vnet_dump,
	.read_reg = vnet_read_reg,
};

static bool negotiate(void)
{
	uint64_t offered;

	mmio_write32(v.common + COMMON_DFSELECT, 0);
	offered = mmio_read32(v.common + COMMON_DF);
	mmio_write32(v.common + COMMON_DFSELECT, 1);
	offered |= (uint64_t)mmio_read32(v.common + COMMON_DF) << 32;
	if (!(offered & F_VERSION_1)) {
		printf("virtio-net: device does not offer VERSION_1\n");
		return false;
	}
	v.features = offered & (F_VERSION_1 | F_MAC | F_STATUS);
	mmio_write32(v.common + COMMON_GFSELECT, 0);
	mmio_write32(v.common + COMMON_GF, (uint32_t)v.features);
	mmio_write32(v.common + COMMON_GFSELECT, 1);
	mmio_write32(v.common + COMMON_GF, (uint32_t)(v.features >> 32));
	mmio_write8(v.common + COMMON_STATUS, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
	return mmio_read8(v.common + COMMON_STATUS) & STATUS_FEATURES_OK;
}

bool virtio_net_probe(struct nic *nic, struct pci_dev *dev)
{
	uint8_t notify_cap = 0;

	pci_enable(dev);
	v.common = find_cfg(dev, CFG_COMMON, NULL);
	v.device = find_cfg(dev, CFG_DEVICE, NULL);
	v.notify_base = find_cfg(dev, CFG_NOTIFY, &notify_cap);
	if (!v.common || !v.device || !v.notify_base) {
		printf("virtio-net: missing virtio-pci capabilities\n");
		return false;
	}
	v.notify_mult = pci_read32(dev, notify_cap + 16);

	/* Reset, then wait for the device to acknowledge it. */
	mmio_write8(v.common + COMMON_STATUS, 0);
	uint64_t deadline = deadline_ms(100);
	while (mmio_read8(v.common + COMMON_STATUS) && !deadline_passed(deadline))
		cpu_relax();
	mmio_write8(v.common + COMMON_STATUS, STATUS_ACK | STATUS_DRIVER);

	window_find(dev, 2, QSIZE, &v.win); /* slot k at k*BUF_SIZE, BUF_SIZE == WINDOW_SLOT */
	if (!negotiate() || !vq_setup(&v.rx, 0, true) || !vq_setup(&v.tx, 1, false)) {
		mmio_write8(v.common + COMMON_STATUS, STATUS_FAILED);
		printf("virtio-net: setup failed\n");
		return false;
	}
	if (v.features & F_MAC)
		for (int i = 0; i < 6; i++)
			nic->mac[i] = mmio_read8(v.device + i);
	else
		memcpy(nic->mac, (uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, 6);

	v.rx.batch = nic_rx_batch(v.rx.size);
	v.rx_read_reg = nic_rx_read_reg();
	v.notify_always = cmdline_uint("notify_always", 0) != 0;
	v.rx_work = nic_rx_work_ticks();
	/* Every RX buffer goes to the device before it starts. */
	for (unsigned i = 0; i < v.rx.size; i++)
		v.rx.avail->ring[i] = i;
	v.rx.avail_idx = v.rx.size;
	mmio_write8(v.common + COMMON_STATUS,
		    STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
	vq_kick(&v.rx);

	nic->model = "virtio";
	nic->ops = &vnet_ops;
	return true;
}
