/*
 * virtio-net over modern virtio-pci (1AF4:1041), polled split virtqueues.
 *
 * Queue 0 receives, queue 1 transmits. Descriptor i of each queue always
 * points at buffer i, so a buffer is identified by its descriptor id and
 * nothing is allocated per frame. Every frame is preceded by the 12-byte
 * virtio_net_hdr of VERSION_1 (all zero on TX: no offloads negotiated).
 * Notifications are MMIO writes to the notify BAR — the only exits. The
 * transport is the toolkit's (lib/virtio_pci.h): as Linux and DPDK do, a
 * queue is not notified while the device says it does not need it
 * (VIRTQ_USED_F_NO_NOTIFY); notify_always=1 notifies on every kick, as a
 * driver that ignores the flag would.
 *
 * window=1: the buffers live in the crossover DMA window (BAR2, see
 * window.h): TX buffer k (header + frame) at TX half + k*2048, RX buffer k
 * at RX half + k*2048. A TX head then stays with the device until the
 * peer's guest gives its RX buffer k back, so TX completions may come out
 * of order: each TX slot is tracked by its used id.
 */
#include "guest.h"
#include "nic.h"
#include "virtio_pci.h"
#include "window.h"

#define F_MAC       (1ull << 5)
#define F_STATUS    (1ull << 16)

#define NET_S_LINK_UP 1

#define QSIZE       VIRTQ_MAX
#define BUF_SIZE    2048
#define HDR_LEN     12

/* A queue whose descriptor i always points at buffer i. */
struct vq {
	struct virtq vq;
	uint8_t *buf;
	unsigned unpublished;
	unsigned batch; /* RX: publish returned buffers this many at a time */
};

static struct {
	struct virtio_pci t;
	uint64_t features;
	struct vq rx, tx;
	struct window win;           /* window=1: buffers in the DMA window */
	uint8_t tx_busy[QSIZE];      /* the device holds TX slot i */
	unsigned tx_outstanding;
	bool rx_read_reg;            /* rx_read_reg=1: read device_status after each RX notify */
	uint64_t rx_work;            /* rx_work_ns= in TSC ticks, spent on every received frame */
} v;

/* Publishes the new buffers; true if it notified the device. */
static bool vq_kick(struct vq *q)
{
	q->unpublished = 0;
	return virtq_kick(&v.t, &q->vq);
}

static bool vq_setup(struct vq *q, uint16_t index, bool device_writes)
{
	unsigned max = virtio_pci_queue_max(&v.t, index);
	if (max == 0)
		return false;
	unsigned size = max < QSIZE ? max : QSIZE;
	if (size & (size - 1))
		return false; /* split rings need a power of two */
	virtq_setup(&v.t, &q->vq, index, size, &v.win.rings);
	uint8_t *window_half = device_writes ? v.win.rx : v.win.tx;
	q->buf = window_half ? window_half : dma_alloc(QSIZE * BUF_SIZE, 4096);
	for (unsigned i = 0; i < size; i++) {
		q->vq.desc[i].addr = dma_addr(q->buf + i * BUF_SIZE);
		q->vq.desc[i].len = BUF_SIZE;
		q->vq.desc[i].flags = device_writes ? VIRTQ_DESC_F_WRITE : 0;
	}
	return true;
}

static bool vnet_link_up(struct nic *nic)
{
	if (!(v.features & F_STATUS))
		return true; /* no status field: the link is always up */
	nic->idle_reads++;
	return mmio_read16(v.t.device + 6) & NET_S_LINK_UP;
}

static uint8_t *vnet_tx_slot(struct nic *nic)
{
	(void)nic;
	if (v.tx_busy[v.tx.vq.avail_idx % v.tx.vq.size])
		return NULL;
	return v.tx.buf + (v.tx.vq.avail_idx % v.tx.vq.size) * BUF_SIZE + HDR_LEN;
}

static void vnet_tx_commit(struct nic *nic, uint16_t len)
{
	unsigned slot = v.tx.vq.avail_idx % v.tx.vq.size;

	(void)nic;
	memset(v.tx.buf + slot * BUF_SIZE, 0, HDR_LEN);
	v.tx.vq.desc[slot].len = HDR_LEN + len;
	v.tx.vq.avail->ring[slot] = slot;
	v.tx.vq.avail_idx++;
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
	uint16_t used = v.tx.vq.used->idx;

	(void)nic;
	while (v.tx.vq.used_seen != used) {
		uint32_t id = v.tx.vq.used->ring[v.tx.vq.used_seen % v.tx.vq.size].id;

		if (id >= v.tx.vq.size || !v.tx_busy[id])
			panic("virtio-net: bad TX used entry id=%u", id);
		v.tx_busy[id] = 0;
		v.tx_outstanding--;
		v.tx.vq.used_seen++;
	}
	return v.tx_outstanding;
}

static const uint8_t *vnet_rx_peek(struct nic *nic, uint16_t *len)
{
	(void)nic;
	if (v.rx.vq.used->idx == v.rx.vq.used_seen)
		return NULL;
	volatile struct vq_used_elem *u = &v.rx.vq.used->ring[v.rx.vq.used_seen % v.rx.vq.size];
	uint32_t id = u->id, n = u->len;
	if (id >= v.rx.vq.size || n < HDR_LEN)
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
	virtio_pci_status(&v.t);
}

static void vnet_rx_done(struct nic *nic)
{
	uint32_t id = v.rx.vq.used->ring[v.rx.vq.used_seen % v.rx.vq.size].id;

	if (v.rx_work)
		nic_rx_work(v.rx_work); /* the frame is dealt with before its buffer goes back */
	v.rx.vq.used_seen++;
	v.rx.vq.avail->ring[v.rx.vq.avail_idx % v.rx.vq.size] = id;
	v.rx.vq.avail_idx++;
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
	       virtio_pci_status(&v.t), v.rx.vq.avail_idx, v.rx.vq.used->idx,
	       v.rx.vq.used_seen, v.tx.vq.avail_idx, v.tx.vq.used->idx, v.tx.vq.used_seen);
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
	.probe = virtio_net_probe,
};

static bool negotiate(void)
{
	uint64_t offered = virtio_pci_device_features(&v.t);

	if (!(offered & VIRTIO_F_VERSION_1)) {
		printf("virtio-net: device does not offer VERSION_1\n");
		return false;
	}
	v.features = offered & (VIRTIO_F_VERSION_1 | F_MAC | F_STATUS);
	return virtio_pci_set_features(&v.t, v.features);
}

bool virtio_net_probe(struct nic *nic, struct pci_dev *dev)
{
	memset(&v, 0, sizeof(v)); /* a reload probes again */
	if (!virtio_pci_find(&v.t, dev)) {
		printf("virtio-net: missing virtio-pci capabilities\n");
		return false;
	}

	/* Reset, then wait (a while) for the device to acknowledge it. */
	virtio_pci_reset(&v.t, 100);
	virtio_pci_set_status(&v.t, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);

	window_find(dev, 2, QSIZE, &v.win); /* slot k at k*BUF_SIZE, BUF_SIZE == WINDOW_SLOT */
	if (!negotiate() || !vq_setup(&v.rx, 0, true) || !vq_setup(&v.tx, 1, false)) {
		virtio_pci_set_status(&v.t, VIRTIO_STATUS_FAILED);
		printf("virtio-net: setup failed\n");
		return false;
	}
	if (v.features & F_MAC)
		for (int i = 0; i < 6; i++)
			nic->mac[i] = mmio_read8(v.t.device + i);
	else
		memcpy(nic->mac, (uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, 6);

	v.rx.batch = nic_rx_batch(v.rx.vq.size);
	v.rx_read_reg = nic_rx_read_reg();
	v.t.notify_always = cmdline_uint("notify_always", 0) != 0;
	v.rx_work = nic_rx_work_ticks();
	/* Every RX buffer goes to the device before it starts. */
	for (unsigned i = 0; i < v.rx.vq.size; i++)
		v.rx.vq.avail->ring[i] = i;
	v.rx.vq.avail_idx = v.rx.vq.size;
	virtio_pci_set_status(&v.t, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
					    VIRTIO_STATUS_DRIVER_OK);
	vq_kick(&v.rx);

	nic->model = "virtio";
	nic->ops = &vnet_ops;
	nic->dev = dev;
	return true;
}
