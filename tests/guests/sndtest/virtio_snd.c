/*
 * virtio-snd over modern virtio-pci (1AF4:1059), polled split virtqueues.
 *
 * The transport is nettest's (virtio_net.c): vendor capabilities for the
 * common, notify and device configuration, VERSION_1 only, notifications
 * as MMIO writes to the notify BAR, suppressed while the device sets
 * VIRTQ_USED_F_NO_NOTIFY (notify_always=1: every kick notifies). Unlike
 * virtio-net's fixed buffers, a request here is a chain of 2-3
 * descriptors taken from a free list and identified by its head's
 * cookie, so the device may complete requests in any order.
 *
 * Control requests are made one at a time: [request][status header]
 * [info array, for *_INFO], as Linux lays them out. Event buffers (8
 * bytes, device-writable) are reposted as soon as they are handled.
 */
#include "guest.h"
#include "snd.h"

#define PCI_CAP_VENDOR 0x09
#define CFG_COMMON     1
#define CFG_NOTIFY     2
#define CFG_DEVICE     4

#define COMMON_DFSELECT   0x00
#define COMMON_DF         0x04
#define COMMON_GFSELECT   0x08
#define COMMON_GF         0x0c
#define COMMON_NUM_QUEUES 0x12
#define COMMON_STATUS     0x14
#define COMMON_CFG_GEN    0x15
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

#define F_INDIRECT_DESC (1ull << 28)
#define F_EVENT_IDX     (1ull << 29)
#define F_VERSION_1     (1ull << 32)

#define DESC_F_NEXT  1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY     1

#define QMAX        256
#define EVENT_BUFS  16
#define INFO_MAX    1024 /* bytes of *_INFO answer */
#define STATUS_POISON 0xffffffffu
#define STATUS_SHORT  0xfffffffeu /* our own: the device wrote less than the answer needs */

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QMAX];
	uint16_t used_event;
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[QMAX];
	uint16_t avail_event;
};

struct vq {
	uint16_t index, size;
	volatile struct vq_desc *desc;
	volatile struct vq_avail *avail;
	volatile struct vq_used *used;
	uint64_t notify;
	uint16_t avail_idx; /* ours, published to avail->idx on kick */
	uint16_t used_seen;
	uint16_t free_head, num_free;
	void *cookie[QMAX];  /* per chain head; NULL: free */
	uint8_t chain_len[QMAX];
};

struct seg {
	const volatile void *p;
	uint32_t len;
	bool write;
};

struct snd_dev snd;

static struct {
	uint64_t common, device, notify_base;
	uint32_t notify_mult;
	bool notify_always;
	struct vq q[VSND_VQ_COUNT];
	volatile struct vsnd_event *events;
	/* the one control request in flight */
	struct ctl {
		union {
			struct vsnd_query_info query;
			struct vsnd_pcm_set_params params;
			struct vsnd_pcm_hdr pcm;
		} req;
		uint32_t status;
		uint8_t info[INFO_MAX];
	} *ctl;
} v;

static const char *const queue_names[VSND_VQ_COUNT] = { "control", "event", "tx", "rx" };

__attribute__((noreturn)) static void fail(const char *fmt, uint64_t a, uint64_t b)
{
	printf("sndtest: FAIL: ");
	printf(fmt, a, b);
	printf("\n");
	snd_dump();
	exit(EXIT_FAIL);
}

void snd_timeout(const char *what)
{
	printf("sndtest: timeout: %s\n", what);
	snd_dump();
	exit(EXIT_TIMEOUT);
}

const char *snd_status_name(uint32_t status)
{
	switch (status) {
	case VSND_S_OK: return "OK";
	case VSND_S_BAD_MSG: return "BAD_MSG";
	case VSND_S_NOT_SUPP: return "NOT_SUPP";
	case VSND_S_IO_ERR: return "IO_ERR";
	case STATUS_POISON: return "not-written";
	case STATUS_SHORT: return "short-answer";
	default: return "unknown";
	}
}

/* --- split virtqueues --- */

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

static bool vq_setup(struct vq *q, uint16_t index)
{
	mmio_write16(v.common + COMMON_Q_SELECT, index);
	unsigned max = mmio_read16(v.common + COMMON_Q_SIZE);
	if (max == 0) {
		printf("sndtest: queue %u (%s) has size 0\n", index, queue_names[index]);
		return false;
	}
	unsigned size = max < QMAX ? max : QMAX;
	while (size & (size - 1))
		size &= size - 1; /* split rings: a power of two */
	mmio_write16(v.common + COMMON_Q_SIZE, size);
	q->index = index;
	q->size = size;
	q->desc = dma_alloc(sizeof(struct vq_desc) * QMAX, 16);
	q->avail = dma_alloc(sizeof(struct vq_avail), 2);
	q->used = dma_alloc(sizeof(struct vq_used), 4);
	q->avail->flags = AVAIL_F_NO_INTERRUPT; /* polled */
	for (unsigned i = 0; i < size; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->free_head = 0;
	q->num_free = size;
	mmio_write64(v.common + COMMON_Q_DESC, dma_addr(q->desc));
	mmio_write64(v.common + COMMON_Q_AVAIL, dma_addr(q->avail));
	mmio_write64(v.common + COMMON_Q_USED, dma_addr(q->used));
	q->notify = v.notify_base + (uint64_t)mmio_read16(v.common + COMMON_Q_NOFF) * v.notify_mult;
	mmio_write16(v.common + COMMON_Q_ENABLE, 1);
	snd.queue_size[index] = size;
	return true;
}

/* Adds a chain (not yet published); the caller has checked there is room. */
static void vq_add(struct vq *q, const struct seg *segs, unsigned n, void *cookie)
{
	if (n == 0 || q->num_free < n)
		fail("queue needs %lu descriptors, has %lu", n, q->num_free);
	uint16_t head = q->free_head, d = head;

	for (unsigned i = 0; i < n; i++) {
		volatile struct vq_desc *e = &q->desc[d];

		e->addr = dma_addr(segs[i].p);
		e->len = segs[i].len;
		e->flags = (uint16_t)((segs[i].write ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
		if (i + 1 < n)
			d = e->next;
	}
	q->free_head = q->desc[d].next;
	q->num_free = (uint16_t)(q->num_free - n);
	q->cookie[head] = cookie;
	q->chain_len[head] = (uint8_t)n;
	q->avail->ring[q->avail_idx % q->size] = head;
	q->avail_idx++;
}

static void vq_kick(struct vq *q)
{
	dma_barrier();
	q->avail->idx = q->avail_idx;
	/* As nettest: the device clears NO_NOTIFY and rereads avail->idx, we store
	 * avail->idx and then read the flag; one of us sees the other. */
	asm volatile("mfence" ::: "memory");
	if (!v.notify_always && (q->used->flags & USED_F_NO_NOTIFY))
		return;
	mmio_write16(q->notify, q->index);
}

/* The next used chain's cookie (its descriptors freed), or NULL. */
static void *vq_get(struct vq *q, uint32_t *len)
{
	if (q->used->idx == q->used_seen)
		return NULL;
	dma_barrier(); /* read the entry (and the buffers) only after idx */
	volatile struct vq_used_elem *u = &q->used->ring[q->used_seen % q->size];
	uint32_t id = u->id;
	*len = u->len;
	if (id >= q->size || !q->cookie[id])
		fail("device returned a bad used id %lu on queue %lu", id, q->index);
	void *cookie = q->cookie[id];
	uint16_t d = (uint16_t)id;
	for (unsigned i = 1; i < q->chain_len[id]; i++)
		d = q->desc[d].next;
	q->desc[d].next = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + q->chain_len[id]);
	q->cookie[id] = NULL;
	q->used_seen++;
	return cookie;
}

/* --- events --- */

static void event_post(volatile struct vsnd_event *e)
{
	struct seg s = { e, sizeof(*e), true };

	e->type = STATUS_POISON;
	e->data = STATUS_POISON;
	vq_add(&v.q[VSND_VQ_EVENT], &s, 1, (void *)e);
}

static void handle_event(volatile struct vsnd_event *e, uint32_t len)
{
	uint32_t type = e->type, data = e->data;

	if (len < sizeof(*e)) {
		snd.bad_events++;
		printf("sndtest: event with used len %u (want 8)\n", len);
		return;
	}
	switch (type) {
	case VSND_EVT_JACK_CONNECTED:
	case VSND_EVT_JACK_DISCONNECTED:
		snd.jack_events++;
		if (data >= snd.cfg.jacks || data >= SND_MAX_JACKS) {
			snd.bad_events++;
			printf("sndtest: jack event for jack %u, the device has %u\n", data, snd.cfg.jacks);
			return;
		}
		snd.jack_connected[data] = type == VSND_EVT_JACK_CONNECTED;
		if (snd.print_events)
			printf("sndtest: jack %u %s\n", data,
			       type == VSND_EVT_JACK_CONNECTED ? "connected" : "disconnected");
		return;
	case VSND_EVT_PCM_PERIOD_ELAPSED:
	case VSND_EVT_PCM_XRUN:
		snd.pcm_events++;
		if (snd.print_events)
			printf("sndtest: pcm stream %u %s\n", data,
			       type == VSND_EVT_PCM_XRUN ? "xrun" : "period elapsed");
		return;
	default:
		snd.other_events++;
		printf("sndtest: unknown event type=%#x data=%#x\n", type, data);
	}
}

void snd_poll_events(void)
{
	struct vq *q = &v.q[VSND_VQ_EVENT];
	bool any = false;
	uint32_t len;
	void *c;

	if (!q->size)
		return;
	while ((c = vq_get(q, &len)) != NULL) {
		handle_event(c, len);
		event_post(c);
		any = true;
	}
	if (any)
		vq_kick(q);
}

void snd_service(void)
{
	snd_poll_events();
	if (snd.deadline && deadline_passed(snd.deadline))
		snd_timeout("the run took longer than its overall limit (overall_ms=)");
}

void snd_dump(void)
{
	if (!v.common)
		return;
	printf("sndtest: device status=%#x", mmio_read8(v.common + COMMON_STATUS));
	for (unsigned i = 0; i < VSND_VQ_COUNT; i++) {
		struct vq *q = &v.q[i];

		if (q->size)
			printf(" %s avail=%u used=%u seen=%u free=%u", queue_names[i], q->avail_idx, q->used->idx,
			       q->used_seen, q->num_free);
	}
	printf("\n");
}

/* --- control requests --- */

static uint32_t ctl_request(size_t req_len, size_t info_len, const char *name)
{
	struct vq *q = &v.q[VSND_VQ_CONTROL];
	struct seg segs[3] = {
		{ &v.ctl->req, (uint32_t)req_len, false },
		{ &v.ctl->status, sizeof(v.ctl->status), true },
		{ v.ctl->info, (uint32_t)info_len, true },
	};
	uint32_t len = 0;
	char what[96];

	v.ctl->status = STATUS_POISON;
	memset(v.ctl->info, 0xa5, info_len);
	vq_add(q, segs, info_len ? 3 : 2, v.ctl);
	vq_kick(q);
	uint64_t deadline = deadline_ms(snd.timeout_ms);
	while (vq_get(q, &len) == NULL) {
		snd_service();
		if (deadline_passed(deadline)) {
			snprintf(what, sizeof(what), "control request %s got no answer in %lu ms", name,
				 snd.timeout_ms);
			snd_timeout(what);
		}
		cpu_relax();
	}
	uint32_t status = ((volatile struct ctl *)v.ctl)->status;
	if (status == VSND_S_OK && len < sizeof(v.ctl->status) + info_len) {
		printf("sndtest: %s: used len %u, the answer is %lu bytes\n", name, len,
		       sizeof(v.ctl->status) + info_len);
		return STATUS_SHORT;
	}
	return status;
}

uint32_t snd_query_info(uint32_t code, uint32_t start, uint32_t count, uint32_t size, void *out)
{
	if ((uint64_t)count * size > INFO_MAX)
		fail("info query of %lu items of %lu bytes is too big", count, size);
	v.ctl->req.query = (struct vsnd_query_info){ code, start, count, size };
	uint32_t status = ctl_request(sizeof(struct vsnd_query_info), count * size,
				      code == VSND_R_JACK_INFO  ? "JACK_INFO"
				      : code == VSND_R_PCM_INFO ? "PCM_INFO"
								: "CHMAP_INFO");
	memcpy(out, v.ctl->info, count * size);
	return status;
}

uint32_t snd_pcm_set_params(uint32_t stream, uint32_t buffer_bytes, uint32_t period_bytes, uint8_t channels,
			    uint8_t format, uint8_t rate)
{
	v.ctl->req.params = (struct vsnd_pcm_set_params){
		.code = VSND_R_PCM_SET_PARAMS,
		.stream_id = stream,
		.buffer_bytes = buffer_bytes,
		.period_bytes = period_bytes,
		.features = 0,
		.channels = channels,
		.format = format,
		.rate = rate,
	};
	return ctl_request(sizeof(struct vsnd_pcm_set_params), 0, "PCM_SET_PARAMS");
}

uint32_t snd_pcm_command(uint32_t code, uint32_t stream)
{
	v.ctl->req.pcm = (struct vsnd_pcm_hdr){ code, stream };
	return ctl_request(sizeof(struct vsnd_pcm_hdr), 0,
			   code == VSND_R_PCM_PREPARE ? "PCM_PREPARE"
			   : code == VSND_R_PCM_START ? "PCM_START"
			   : code == VSND_R_PCM_STOP  ? "PCM_STOP"
						      : "PCM_RELEASE");
}

/* --- PCM I/O --- */

struct snd_io *snd_io_alloc(unsigned n, uint32_t bytes)
{
	struct snd_io *ios = dma_alloc(sizeof(struct snd_io) * n, 64);

	for (unsigned i = 0; i < n; i++) {
		ios[i].xfer = dma_alloc(sizeof(struct vsnd_pcm_xfer), 16);
		ios[i].status = dma_alloc(sizeof(struct vsnd_pcm_status), 16);
		ios[i].data = dma_alloc(bytes, 64);
		ios[i].bytes = bytes;
		ios[i].index = i;
	}
	return ios;
}

unsigned snd_io_room(unsigned queue)
{
	return v.q[queue].num_free / 3;
}

void snd_io_submit(unsigned queue, uint32_t stream, struct snd_io *io)
{
	bool rx = queue == VSND_VQ_RX;
	struct seg segs[3] = {
		{ io->xfer, sizeof(struct vsnd_pcm_xfer), false },
		{ io->data, io->bytes, rx },
		{ io->status, sizeof(struct vsnd_pcm_status), true },
	};

	if (io->busy)
		fail("request %lu submitted twice (queue %lu)", io->index, queue);
	io->xfer->stream_id = stream;
	io->status->status = STATUS_POISON;
	io->status->latency_bytes = STATUS_POISON;
	if (rx)
		memset(io->data, 0x5a, io->bytes); /* a device that does not write shows as 0x5a5a */
	io->used_len = 0;
	io->busy = true;
	io->submitted = rdtsc();
	vq_add(&v.q[queue], segs, 3, io);
}

void snd_kick(unsigned queue)
{
	vq_kick(&v.q[queue]);
}

struct snd_io *snd_io_reap(unsigned queue)
{
	uint32_t len;
	struct snd_io *io = vq_get(&v.q[queue], &len);

	if (!io)
		return NULL;
	io->used_len = len;
	io->busy = false;
	return io;
}

/* --- bring-up --- */

static bool negotiate(void)
{
	mmio_write32(v.common + COMMON_DFSELECT, 0);
	snd.offered = mmio_read32(v.common + COMMON_DF);
	mmio_write32(v.common + COMMON_DFSELECT, 1);
	snd.offered |= (uint64_t)mmio_read32(v.common + COMMON_DF) << 32;
	if (!(snd.offered & F_VERSION_1)) {
		printf("sndtest: the device does not offer VERSION_1 (features %#lx)\n", snd.offered);
		return false;
	}
	snd.features = F_VERSION_1; /* INDIRECT_DESC / EVENT_IDX: not needed */
	mmio_write32(v.common + COMMON_GFSELECT, 0);
	mmio_write32(v.common + COMMON_GF, (uint32_t)snd.features);
	mmio_write32(v.common + COMMON_GFSELECT, 1);
	mmio_write32(v.common + COMMON_GF, (uint32_t)(snd.features >> 32));
	mmio_write8(v.common + COMMON_STATUS, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
	if (!(mmio_read8(v.common + COMMON_STATUS) & STATUS_FEATURES_OK)) {
		printf("sndtest: the device refused FEATURES_OK\n");
		return false;
	}
	return true;
}

/* The device configuration, consistent (config_generation unchanged across the reads). */
static void read_config(void)
{
	for (int tries = 0; tries < 100; tries++) {
		uint8_t gen = mmio_read8(v.common + COMMON_CFG_GEN);

		snd.cfg.jacks = mmio_read32(v.device + 0);
		snd.cfg.streams = mmio_read32(v.device + 4);
		snd.cfg.chmaps = mmio_read32(v.device + 8);
		if (mmio_read8(v.common + COMMON_CFG_GEN) == gen)
			return;
	}
	printf("sndtest: config_generation never settled\n");
}

bool snd_probe(struct pci_dev *dev, bool notify_always)
{
	uint8_t notify_cap = 0;

	snd.pci = dev;
	for (unsigned i = 0; i < SND_MAX_JACKS; i++)
		snd.jack_connected[i] = -1;
	v.notify_always = notify_always;
	pci_enable(dev);
	v.common = find_cfg(dev, CFG_COMMON, NULL);
	v.device = find_cfg(dev, CFG_DEVICE, NULL);
	v.notify_base = find_cfg(dev, CFG_NOTIFY, &notify_cap);
	if (!v.common || !v.device || !v.notify_base) {
		printf("sndtest: missing virtio-pci capabilities (common %#lx device %#lx notify %#lx)\n",
		       v.common, v.device, v.notify_base);
		v.common = 0;
		return false;
	}
	v.notify_mult = pci_read32(dev, notify_cap + 16);

	mmio_write8(v.common + COMMON_STATUS, 0);
	uint64_t deadline = deadline_ms(1000);
	while (mmio_read8(v.common + COMMON_STATUS) && !deadline_passed(deadline))
		cpu_relax();
	if (mmio_read8(v.common + COMMON_STATUS)) {
		printf("sndtest: the device did not reset\n");
		return false;
	}
	mmio_write8(v.common + COMMON_STATUS, STATUS_ACK | STATUS_DRIVER);
	if (!negotiate())
		goto failed;
	snd.num_queues = mmio_read16(v.common + COMMON_NUM_QUEUES);
	if (snd.num_queues < VSND_VQ_COUNT) {
		printf("sndtest: the device has %u queues, virtio-snd has 4\n", snd.num_queues);
		goto failed;
	}
	for (unsigned i = 0; i < VSND_VQ_COUNT; i++)
		if (!vq_setup(&v.q[i], (uint16_t)i))
			goto failed;
	read_config();

	v.ctl = dma_alloc(sizeof(*v.ctl), 64);
	unsigned nev = v.q[VSND_VQ_EVENT].size < EVENT_BUFS ? v.q[VSND_VQ_EVENT].size : EVENT_BUFS;
	v.events = dma_alloc(sizeof(struct vsnd_event) * EVENT_BUFS, 64);
	for (unsigned i = 0; i < nev; i++)
		event_post(&v.events[i]);
	mmio_write8(v.common + COMMON_STATUS,
		    STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
	vq_kick(&v.q[VSND_VQ_EVENT]);
	return true;

failed:
	mmio_write8(v.common + COMMON_STATUS, STATUS_FAILED);
	printf("sndtest: device setup failed\n");
	return false;
}
