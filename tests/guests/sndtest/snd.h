/*
 * sndtest's virtio-snd driver (virtio_snd.c) and the roles (pcm.c).
 *
 * The driver is polled: every queue carries VIRTQ_AVAIL_F_NO_INTERRUPT,
 * MSI-X stays disabled, and completions are found by reading the used
 * rings. Every wait is bounded: a request the device does not answer in
 * time, or the whole run outlasting its overall limit, ends the guest
 * with EXIT_TIMEOUT and a message.
 */
#ifndef SNDTEST_SND_H
#define SNDTEST_SND_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "virtio_snd.h"

/* Exit statuses (documented in main.c). */
#define EXIT_PASS      0
#define EXIT_FAIL      1
#define EXIT_USAGE     2
/* 3 and 4 are the toolkit's EXIT_FAULT and EXIT_PANIC (console.h) */
#define EXIT_NO_DEVICE 5
#define EXIT_TIMEOUT   6

#define SND_MAX_JACKS 8

/* --- the device (virtio_snd.c) --- */

struct snd_dev {
	struct pci_dev *pci;
	uint64_t features;   /* negotiated */
	uint64_t offered;    /* what the device offered */
	struct vsnd_config cfg;
	uint16_t num_queues;
	uint16_t queue_size[VSND_VQ_COUNT];
	/* jack states: -1 unknown, else 0/1; JACK_INFO sets them, events update them */
	int jack_connected[SND_MAX_JACKS];
	uint64_t jack_events, pcm_events, other_events, bad_events;
	bool print_events;   /* events=1: print jack events as they arrive */
	uint64_t timeout_ms; /* per request */
	uint64_t deadline;   /* the whole run (TSC) */
};

extern struct snd_dev snd;

/* Brings the device up to DRIVER_OK with its four queues; false (printed) on failure. */
bool snd_probe(struct pci_dev *d, bool notify_always);

/*
 * Control requests. Each returns the device's status code (VSND_S_*);
 * a request not answered within snd.timeout_ms exits with EXIT_TIMEOUT.
 */
uint32_t snd_query_info(uint32_t code, uint32_t start, uint32_t count, uint32_t size, void *out);
uint32_t snd_pcm_set_params(uint32_t stream, uint32_t buffer_bytes, uint32_t period_bytes, uint8_t channels,
			    uint8_t format, uint8_t rate);
uint32_t snd_pcm_command(uint32_t code, uint32_t stream); /* PREPARE/START/STOP/RELEASE */

/*
 * One PCM I/O request: [xfer][data][status], data device-readable on the
 * tx queue and device-writable on the rx queue.
 */
struct snd_io {
	volatile struct vsnd_pcm_xfer *xfer;
	volatile struct vsnd_pcm_status *status;
	uint8_t *data;
	uint32_t bytes;    /* data bytes offered */
	uint32_t used_len; /* what the device reported, on completion */
	bool busy;         /* with the device */
	unsigned index;    /* in its pool */
	uint64_t submitted; /* TSC at submission */
};

/* n requests of `bytes` data each, in DMA memory. */
struct snd_io *snd_io_alloc(unsigned n, uint32_t bytes);
/* Queues io on VSND_VQ_TX or VSND_VQ_RX for stream; published by snd_kick. */
void snd_io_submit(unsigned queue, uint32_t stream, struct snd_io *io);
void snd_kick(unsigned queue);
/* The next completed request on the queue, or NULL. Does not wait. */
struct snd_io *snd_io_reap(unsigned queue);
/* How many chains the queue can still take (3 descriptors each). */
unsigned snd_io_room(unsigned queue);

/* Handles whatever arrived on the event queue (and reposts its buffers). */
void snd_poll_events(void);
/* snd_poll_events, plus the overall deadline: exits with EXIT_TIMEOUT once it has passed. */
void snd_service(void);
/* Prints the rings' state (after a failure). */
void snd_dump(void);

const char *snd_status_name(uint32_t status);

/* --- the roles (pcm.c) --- */

enum role { ROLE_INFO, ROLE_PLAY, ROLE_RECORD, ROLE_LOOP };

struct options {
	enum role role;
	uint32_t rate;           /* rate=44100|48000 */
	uint8_t rate_index;      /* VSND_PCM_RATE_* */
	uint32_t channels;       /* channels=1|2 */
	uint32_t freq;           /* freq=HZ (play) */
	uint32_t amplitude;      /* amp=A (play), default 16384: half scale */
	uint32_t periods;        /* periods=N */
	uint32_t period_frames;  /* period_frames=F */
	uint32_t buffer_periods; /* buffer_periods=B */
	uint32_t prefill;        /* prefill=P (loop): periods captured before playback starts */
	uint32_t expect;         /* expect=HZ (record), 0: none */
	uint32_t min_level;      /* min_level=RMS (record) */
	bool silence;            /* silence=1 (record) */
	uint32_t silence_max;    /* silence_max=A: |sample| <= A counts as silent (default 0) */
	bool continuous;         /* continuous=1 (record): a discontinuity fails the run */
	bool pace;               /* pace=0 turns the real-time check off */
	uint32_t scan_lo, scan_hi; /* scan_lo= scan_hi= (record): the frequency search range */
	uint32_t stall_at, stall_ms; /* stall_at=K stall_ms=S (record): after period K, S ms before re-queuing */
};

int role_play(const struct options *o);
int role_record(const struct options *o);
int role_loop(const struct options *o);

/* Ends the run with EXIT_TIMEOUT after printing why (and the rings). */
__attribute__((noreturn)) void snd_timeout(const char *what);

#endif
