/*
 * The modern virtio-pci transport (virtio 1.x §4.1.4) for polled drivers:
 * the vendor capabilities that locate the common, notify and device
 * configuration, reset, feature negotiation, and split virtqueues in DMA
 * memory with their doorbells. Notifications are MMIO writes to the
 * notify BAR; as Linux and DPDK do, a queue is not notified while the
 * device says it does not need it (VIRTQ_USED_F_NO_NOTIFY), unless the
 * driver asks to notify on every kick (notify_always). Used by nettest's
 * virtio-net and sndtest's virtio-snd; what a queue's descriptors carry
 * and how used entries are reaped is each driver's own.
 *
 * Every field is little-endian, which on x86 is the CPU's order.
 */
#ifndef GUEST_VIRTIO_PCI_H
#define GUEST_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "dma.h"
#include "mmio.h"
#include "pci.h"

/* Common configuration structure offsets. */
#define VIRTIO_COMMON_DFSELECT   0x00
#define VIRTIO_COMMON_DF         0x04
#define VIRTIO_COMMON_GFSELECT   0x08
#define VIRTIO_COMMON_GF         0x0c
#define VIRTIO_COMMON_NUM_QUEUES 0x12
#define VIRTIO_COMMON_STATUS     0x14
#define VIRTIO_COMMON_CFG_GEN    0x15
#define VIRTIO_COMMON_Q_SELECT   0x16
#define VIRTIO_COMMON_Q_SIZE     0x18
#define VIRTIO_COMMON_Q_ENABLE   0x1c
#define VIRTIO_COMMON_Q_NOFF     0x1e
#define VIRTIO_COMMON_Q_DESC     0x20
#define VIRTIO_COMMON_Q_AVAIL    0x28
#define VIRTIO_COMMON_Q_USED     0x30

/* device_status bits. */
#define VIRTIO_STATUS_ACK         1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_FAILED      0x80

#define VIRTIO_F_VERSION_1 (1ull << 32)

#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* The most entries a queue is set up with (its rings are this large). */
#define VIRTQ_MAX 256

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTQ_MAX];
	uint16_t used_event;
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[VIRTQ_MAX];
	uint16_t avail_event;
};

/* One device's transport: where its structures are (MMIO addresses). */
struct virtio_pci {
	uint64_t common, device, notify_base;
	uint32_t notify_mult;
	bool notify_always; /* notify on every kick, ignoring VIRTQ_USED_F_NO_NOTIFY */
};

/* One split virtqueue, driver side. */
struct virtq {
	unsigned size;
	volatile struct vq_desc *desc;
	volatile struct vq_avail *avail;
	volatile struct vq_used *used;
	uint64_t notify;    /* MMIO address of this queue's doorbell */
	uint16_t index;
	uint16_t avail_idx; /* ours, published to avail->idx on kick */
	uint16_t used_seen; /* next used entry to look at */
};

/*
 * Enables the function (pci_enable) and finds its common, notify and
 * device configuration; false if one is missing (the ones found are set).
 */
bool virtio_pci_find(struct virtio_pci *t, struct pci_dev *dev);

static inline uint8_t virtio_pci_status(const struct virtio_pci *t)
{
	return mmio_read8(t->common + VIRTIO_COMMON_STATUS);
}

static inline void virtio_pci_set_status(const struct virtio_pci *t, uint8_t status)
{
	mmio_write8(t->common + VIRTIO_COMMON_STATUS, status);
}

/* Writes 0 to device_status; true once it reads back 0 (within timeout_ms). */
bool virtio_pci_reset(const struct virtio_pci *t, uint64_t timeout_ms);

/* The 64 feature bits the device offers. */
uint64_t virtio_pci_device_features(const struct virtio_pci *t);

/*
 * Writes the driver's features and sets FEATURES_OK (with ACK and DRIVER);
 * true if the device keeps FEATURES_OK.
 */
bool virtio_pci_set_features(const struct virtio_pci *t, uint64_t features);

/* Selects queue `index`; the largest size the device allows it (0: no such queue). */
unsigned virtio_pci_queue_max(const struct virtio_pci *t, uint16_t index);

/*
 * Sets up the queue virtio_pci_queue_max() just selected with `size`
 * entries (a power of two, at most VIRTQ_MAX): zeroed rings, from `rings`
 * while it has room (dma_alloc_in; NULL: ordinary DMA memory), with avail
 * flags VIRTQ_AVAIL_F_NO_INTERRUPT (polled); their addresses, the
 * doorbell, enabled. What the descriptors point at is the driver's to fill
 * in before DRIVER_OK.
 */
void virtq_setup(const struct virtio_pci *t, struct virtq *q, uint16_t index, unsigned size,
		 struct dma_arena *rings);

/*
 * Publishes the avail entries added since the last kick (avail->idx) and
 * notifies the device unless it does not need it; true if it notified.
 */
bool virtq_kick(const struct virtio_pci *t, struct virtq *q);

#endif
