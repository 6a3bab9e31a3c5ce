/*
 * virtio-snd over modern virtio-pci (1AF4:1059), polled split virtqueues.
 *
 * The transport is the toolkit's (lib/virtio_pci.h), as nettest's
 * virtio-net uses it: VERSION_1 only, notifications as MMIO writes to the
 * notify BAR, suppressed while the device sets VIRTQ_USED_F_NO_NOTIFY
 * (notify_always=1: every kick notifies). Unlike
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
#include "virtio_pci.h"

#define EVENT_BUFS  16
#define INFO_MAX    1024 /* bytes of *_INFO answer */
#define STATUS_POISON 0xffffffffu
#define STATUS_SHORT  0xfffffffeu /* our own: the device wrote less than the answer needs */

/* A queue whose requests are descriptor chains from a free list. */
struct vq {
	struct virtq vq;
	uint16_t free_head, num_free;
	void *cookie[VIRTQ_MAX];  /* per chain head; NULL: free */
	uint8_t chain_len[VIRTQ_MAX];
};

struct seg {
	const volatile void *p;
	uint32_t len;
	bool write;
};

struct snd_dev snd;

static struct {
	struct virtio_pci t;
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

static bool vq_setup(struct vq *q, uint16_t index)
{
	unsigned max = virtio_pci_queue_max(&v.t, index);
	if (max == 0) {
		printf("sndtest: queue %u (%s) has size 0\n", index, queue_names[index]);
		return false;
	}
	unsigned size = max < VIRTQ_MAX ? max : VIRTQ_MAX;
	while (size & (size - 1))
		size &= size - 1; /* split rings: a power of two */
	virtq_setup(&v.t, &q->vq, index, size, NULL);
	for (unsigned i = 0; i < size; i++)
		q->vq.desc[i].next = (uint16_t)(i + 1);
	q->free_head = 0;
	q->num_free = size;
	snd.queue_size[index] = size;
	return true;
}

/* Adds a chain (not yet published); the caller has checked there is room. */
static void vq_add(struct vq *q, const struct seg *segs, unsigned n, void *cookie)
{
	struct virtq *r = &q->vq;

	if (n == 0 || q->num_free < n)
		fail("queue needs %lu descriptors, has %lu", n, q->num_free);
	uint16_t head = q->free_head, d = head;

	for (unsigned i = 0; i < n; i++) {
		volatile struct vq_desc *e = &r->desc[d];

		e->addr = dma_addr(segs[i].p);
		e->len = segs[i].len;
		e->flags = (uint16_t)((segs[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		if (i + 1 < n)
			d = e->next;
	}
	q->free_head = r->desc[d].next;
	q->num_free = (uint16_t)(q->num_free - n);
	q->cookie[head] = cookie;
	q->chain_len[head] = (uint8_t)n;
	r->avail->ring[r->avail_idx % r->size] = head;
	r->avail_idx++;
}

static void vq_kick(struct vq *q)
{
	virtq_kick(&v.t, &q->vq);
}

/* The next used chain's cookie (its descriptors freed), or NULL. */
static void *vq_get(struct vq *q, uint32_t *len)
{
	struct virtq *r = &q->vq;

	if (r->used->idx == r->used_seen)
		return NULL;
	dma_barrier(); /* read the entry (and the buffers) only after idx */
	volatile struct vq_used_elem *u = &r->used->ring[r->used_seen % r->size];
	uint32_t id = u->id;
	*len = u->len;
	if (id >= r->size || !q->cookie[id])
		fail("device returned a bad used id %lu on queue %lu", id, r->index);
	void *cookie = q->cookie[id];
	uint16_t d = (uint16_t)id;
	for (unsigned i = 1; i < q->chain_len[id]; i++)
		d = r->desc[d].next;
	r->desc[d].next = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + q->chain_len[id]);
	q->cookie[id] = NULL;
	r->used_seen++;
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

	if (!q->vq.size)
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
	if (!v.t.common)
		return;
	printf("sndtest: device status=%#x", virtio_pci_status(&v.t));
	for (unsigned i = 0; i < VSND_VQ_COUNT; i++) {
		struct vq *q = &v.q[i];

		if (q->vq.size)
			printf(" %s avail=%u used=%u seen=%u free=%u", queue_names[i], q->vq.avail_idx, q->vq.used->idx,
			       q->vq.used_seen, q->num_free);
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
	snd.offered = virtio_pci_device_features(&v.t);
	if (!(snd.offered & VIRTIO_F_VERSION_1)) {
		printf("sndtest: the device does not offer VERSION_1 (features %#lx)\n", snd.offered);
		return false;
	}
	snd.features = VIRTIO_F_VERSION_1; /* INDIRECT_DESC / EVENT_IDX: not needed */
	if (!virtio_pci_set_features(&v.t, snd.features)) {
		printf("sndtest: the device refused FEATURES_OK\n");
		return false;
	}
	return true;
}

/* The device configuration, consistent (config_generation unchanged across the reads). */
static void read_config(void)
{
	for (int tries = 0; tries < 100; tries++) {
		uint8_t gen = mmio_read8(v.t.common + VIRTIO_COMMON_CFG_GEN);

		snd.cfg.jacks = mmio_read32(v.t.device + 0);
		snd.cfg.streams = mmio_read32(v.t.device + 4);
		snd.cfg.chmaps = mmio_read32(v.t.device + 8);
		if (mmio_read8(v.t.common + VIRTIO_COMMON_CFG_GEN) == gen)
			return;
	}
	printf("sndtest: config_generation never settled\n");
}

bool snd_probe(struct pci_dev *dev, bool notify_always)
{
	snd.pci = dev;
	for (unsigned i = 0; i < SND_MAX_JACKS; i++)
		snd.jack_connected[i] = -1;
	v.t.notify_always = notify_always;
	if (!virtio_pci_find(&v.t, dev)) {
		printf("sndtest: missing virtio-pci capabilities (common %#lx device %#lx notify %#lx)\n",
		       v.t.common, v.t.device, v.t.notify_base);
		v.t.common = 0;
		return false;
	}

	if (!virtio_pci_reset(&v.t, 1000)) {
		printf("sndtest: the device did not reset\n");
		return false;
	}
	virtio_pci_set_status(&v.t, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	if (!negotiate())
		goto failed;
	snd.num_queues = mmio_read16(v.t.common + VIRTIO_COMMON_NUM_QUEUES);
	if (snd.num_queues < VSND_VQ_COUNT) {
		printf("sndtest: the device has %u queues, virtio-snd has 4\n", snd.num_queues);
		goto failed;
	}
	for (unsigned i = 0; i < VSND_VQ_COUNT; i++)
		if (!vq_setup(&v.q[i], (uint16_t)i))
			goto failed;
	read_config();

	v.ctl = dma_alloc(sizeof(*v.ctl), 64);
	unsigned nev = v.q[VSND_VQ_EVENT].vq.size < EVENT_BUFS ? v.q[VSND_VQ_EVENT].vq.size : EVENT_BUFS;
	v.events = dma_alloc(sizeof(struct vsnd_event) * EVENT_BUFS, 64);
	for (unsigned i = 0; i < nev; i++)
		event_post(&v.events[i]);
	virtio_pci_set_status(&v.t, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
					    VIRTIO_STATUS_DRIVER_OK);
	vq_kick(&v.q[VSND_VQ_EVENT]);
	return true;

failed:
	virtio_pci_set_status(&v.t, VIRTIO_STATUS_FAILED);
	printf("sndtest: device setup failed\n");
	return false;
}
