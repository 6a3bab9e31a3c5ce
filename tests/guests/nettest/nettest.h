/* The roles of nettest.elf and the options they share (from the command line). */
#ifndef NETTEST_NETTEST_H
#define NETTEST_NETTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "nic.h"

struct options {
	uint64_t count;      /* count=N; 0 if absent */
	uint16_t size;       /* size=S: frame bytes without FCS */
	unsigned batch;      /* batch=B: frames per TX doorbell */
	uint64_t gap_ns;     /* gap_ns=G: pace tx to one frame per G ns (0: flat out) */
	uint64_t delay_ns;   /* delay_ns=D: rx spends D ns on every frame (a slow receiver) */
	uint64_t timeout_ms; /* timeout_ms=T: give up after this long without traffic */
	uint64_t start_timeout_ms; /* start_timeout_ms=S: rx waits this long for the first frame, txrx for its peer */
	uint64_t hold_ms;    /* hold_ms=H: tx stays up H ms after its RESULT line */
	uint64_t run_ms;     /* run_ms=R: rx stops after R ms, however many frames came */
	bool restarts;       /* restarts=1: rx takes a sequence starting over as a restarted sender */
	uint64_t reload_at;  /* reload_at=N: tx/rx reloads its driver once, after N frames (0: never) */
	uint8_t dst[6];      /* dst=MAC */
	bool have_dst;
	uint8_t ip[4];       /* ip=A.B.C.D (responder) */
	bool have_ip;
};

int role_tx(struct nic *nic, const struct options *o);
int role_rx(struct nic *nic, const struct options *o);
int role_echo(struct nic *nic, const struct options *o);
int role_ping(struct nic *nic, const struct options *o);
int role_exitcost(struct nic *nic, const struct options *o);
int role_responder(struct nic *nic, const struct options *o);
int role_txrx(struct nic *nic, const struct options *o);

/* What a receiver saw of the test frames: role_rx's and role_txrx's checks. */
struct rx_tally {
	uint64_t frames, bytes, errors, lost, start, last;
	uint32_t expected; /* next sequence number */
	bool restarts;     /* a sequence going back is a new sender run, not an error */
	uint64_t restarted;
};

/* Accounts one received frame; false if it is not a test frame. */
bool rx_tally_frame(struct rx_tally *t, const uint8_t *frame, uint16_t len);
/* Busy-waits ns nanoseconds (at CPL3: no exits). */
void spin_ns(uint64_t ns);

/* A free TX buffer, reaping completions while the ring is full; NULL on timeout. */
uint8_t *tx_slot_wait(struct nic *nic, uint64_t timeout_ms);
/* Waits until the device has sent everything; false on timeout. */
bool tx_drain(struct nic *nic, uint64_t timeout_ms);

#endif
