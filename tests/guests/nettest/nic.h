/*
 * What the roles need from a NIC driver: polled TX and RX rings with
 * preallocated buffers, no interrupts. Every call is made at CPL3; only the
 * doorbells (tx_kick, and rx_done every few frames, then with rx_read_reg=1
 * a register read) touch the device.
 */
#ifndef NETTEST_NIC_H
#define NETTEST_NIC_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define ETH_HLEN    14
#define ETH_MAX_LEN 1514 /* without FCS */
#define ETH_MIN_LEN 60

struct nic;

struct nic_ops {
	bool (*link_up)(struct nic *nic);
	/* The next free TX buffer (ETH_MAX_LEN bytes), or NULL while the ring is full. */
	uint8_t *(*tx_slot)(struct nic *nic);
	/* Queues the buffer tx_slot() returned, holding len bytes. */
	void (*tx_commit)(struct nic *nic, uint16_t len);
	/* Hands every committed frame to the device: one doorbell. */
	void (*tx_kick)(struct nic *nic);
	/* Reaps completions; returns how many frames the device still holds. */
	unsigned (*tx_pending)(struct nic *nic);
	/* The oldest received frame, or NULL; stays valid until rx_done(). */
	const uint8_t *(*rx_peek)(struct nic *nic, uint16_t *len);
	/* Gives the rx_peek() buffer back to the device (doorbells are batched). */
	void (*rx_done)(struct nic *nic);
	/* Prints ring state after a failure, to tell driver from device bugs. */
	void (*dump)(struct nic *nic);
	/* Reads a device register without side effects: one VM exit (the
	 * flush rx_read_reg=1 does). */
	void (*read_reg)(struct nic *nic);
	/* The driver's probe (below). It starts from a cleared driver state,
	 * so probing again is a driver reload (reload_at=): the device reset,
	 * its rings set up again from the start with the same buffers, and
	 * whatever they held gone (frames not sent yet, frames not read yet). */
	bool (*probe)(struct nic *nic, struct pci_dev *dev);
};

struct nic {
	const char *model;
	uint8_t mac[6];
	const struct nic_ops *ops;
	/* Register reads made while waiting (link-up polls, an idle
	 * receiver's pokes): as many as the wait was long, so tests that
	 * count a NIC's reads subtract them. */
	uint64_t idle_reads;
	struct pci_dev *dev; /* what the driver was probed on (reload) */
};

/* Driver probes: true if the device was brought up (MAC known, rings live). */
bool e1000_probe(struct nic *nic, struct pci_dev *dev);
bool virtio_net_probe(struct nic *nic, struct pci_dev *dev);

/*
 * rx_batch=R: how many received buffers a driver gives back per doorbell
 * (default 32). Each doorbell is a VM exit, so benchmarks raise it; it is
 * capped at half the ring so that the device (or a window-mode peer whose
 * TX completions wait for our returns) always has buffers in flight.
 */
unsigned nic_rx_batch(unsigned ring_size);

/*
 * A realistic receiver, for benchmarks whose receiver is slower than its
 * sender (both off by default):
 * rx_read_reg=1: after every buffer return (each rx_batch= doorbell) the
 *   driver reads a device register, as real drivers do to flush the posted
 *   doorbell write: a second exit per return, and one the device must
 *   answer only after it has seen the doorbell.
 *   rx_read_reg_returns=K: only the first K returns are flushed (0: all),
 *   as by a driver that stops flushing midway.
 * rx_work_ns=W: the driver spends W ns of busy work on every received frame
 *   before its buffer goes back (a stack that does something with its
 *   frames). Unlike role=rx's delay_ns=, it is the driver's, so every role
 *   pays it, and it runs at CPL3: a spin on the TSC, no exit.
 */
bool nic_rx_read_reg(void);
/* Whether this buffer return is flushed (rx_read_reg_returns=); counts it. */
bool nic_rx_flush_return(void);
/* rx_work_ns= in TSC ticks (0: none). */
uint64_t nic_rx_work_ticks(void);
/* Busy-waits that many TSC ticks. */
void nic_rx_work(uint64_t ticks);

static inline uint8_t *nic_tx_slot(struct nic *n) { return n->ops->tx_slot(n); }
static inline void nic_tx_commit(struct nic *n, uint16_t len) { n->ops->tx_commit(n, len); }
static inline void nic_tx_kick(struct nic *n) { n->ops->tx_kick(n); }
static inline unsigned nic_tx_pending(struct nic *n) { return n->ops->tx_pending(n); }
static inline const uint8_t *nic_rx_peek(struct nic *n, uint16_t *len) { return n->ops->rx_peek(n, len); }
static inline void nic_rx_done(struct nic *n) { n->ops->rx_done(n); }
static inline void nic_read_reg(struct nic *n) { n->ops->read_reg(n); }
static inline void nic_dump(struct nic *n) { n->ops->dump(n); }
static inline bool nic_link_up(struct nic *n) { return n->ops->link_up(n); }
static inline bool nic_reload(struct nic *n) { return n->ops->probe(n, n->dev); }

#endif
