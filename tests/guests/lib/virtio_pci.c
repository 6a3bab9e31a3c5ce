#include "dma.h"
#include "kernel.h"
#include "mmio.h"
#include "tsc.h"
#include "virtio_pci.h"

#define PCI_CAP_VENDOR 0x09
#define CFG_COMMON     1
#define CFG_NOTIFY     2
#define CFG_DEVICE     4

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

bool virtio_pci_find(struct virtio_pci *t, struct pci_dev *dev)
{
	uint8_t notify_cap = 0;

	pci_enable(dev);
	t->common = find_cfg(dev, CFG_COMMON, NULL);
	t->device = find_cfg(dev, CFG_DEVICE, NULL);
	t->notify_base = find_cfg(dev, CFG_NOTIFY, &notify_cap);
	if (!t->common || !t->device || !t->notify_base)
		return false;
	t->notify_mult = pci_read32(dev, notify_cap + 16);
	return true;
}

bool virtio_pci_reset(const struct virtio_pci *t, uint64_t timeout_ms)
{
	uint8_t status;

	virtio_pci_set_status(t, 0);
	uint64_t deadline = deadline_ms(timeout_ms);
	while ((status = virtio_pci_status(t)) != 0 && !deadline_passed(deadline))
		cpu_relax();
	return status == 0;
}

uint64_t virtio_pci_device_features(const struct virtio_pci *t)
{
	uint64_t offered;

	mmio_write32(t->common + VIRTIO_COMMON_DFSELECT, 0);
	offered = mmio_read32(t->common + VIRTIO_COMMON_DF);
	mmio_write32(t->common + VIRTIO_COMMON_DFSELECT, 1);
	offered |= (uint64_t)mmio_read32(t->common + VIRTIO_COMMON_DF) << 32;
	return offered;
}

bool virtio_pci_set_features(const struct virtio_pci *t, uint64_t features)
{
	mmio_write32(t->common + VIRTIO_COMMON_GFSELECT, 0);
	mmio_write32(t->common + VIRTIO_COMMON_GF, (uint32_t)features);
	mmio_write32(t->common + VIRTIO_COMMON_GFSELECT, 1);
	mmio_write32(t->common + VIRTIO_COMMON_GF, (uint32_t)(features >> 32));
	virtio_pci_set_status(t, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return virtio_pci_status(t) & VIRTIO_STATUS_FEATURES_OK;
}

unsigned virtio_pci_queue_max(const struct virtio_pci *t, uint16_t index)
{
	mmio_write16(t->common + VIRTIO_COMMON_Q_SELECT, index);
	return mmio_read16(t->common + VIRTIO_COMMON_Q_SIZE);
}

void virtq_setup(const struct virtio_pci *t, struct virtq *q, uint16_t index, unsigned size,
		 struct dma_arena *rings)
{
	mmio_write16(t->common + VIRTIO_COMMON_Q_SIZE, (uint16_t)size);
	q->index = index;
	q->size = size;
	q->desc = dma_alloc_in(rings, sizeof(struct vq_desc) * VIRTQ_MAX, 16);
	q->avail = dma_alloc_in(rings, sizeof(struct vq_avail), 2);
	q->used = dma_alloc_in(rings, sizeof(struct vq_used), 4);
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT; /* polled: interrupts are wasted work */
	mmio_write64(t->common + VIRTIO_COMMON_Q_DESC, dma_addr(q->desc));
	mmio_write64(t->common + VIRTIO_COMMON_Q_AVAIL, dma_addr(q->avail));
	mmio_write64(t->common + VIRTIO_COMMON_Q_USED, dma_addr(q->used));
	q->notify = t->notify_base + (uint64_t)mmio_read16(t->common + VIRTIO_COMMON_Q_NOFF) * t->notify_mult;
	mmio_write16(t->common + VIRTIO_COMMON_Q_ENABLE, 1);
}

bool virtq_kick(const struct virtio_pci *t, struct virtq *q)
{
	dma_barrier();
	q->avail->idx = q->avail_idx;
	/*
	 * The device clears NO_NOTIFY and then reads avail->idx; we store
	 * avail->idx and then read the flag: with a full fence on each side,
	 * at least one of us sees the other.
	 */
	asm volatile("mfence" ::: "memory");
	if (!t->notify_always && (q->used->flags & VIRTQ_USED_F_NO_NOTIFY))
		return false;
	mmio_write16(q->notify, q->index);
	return true;
}
