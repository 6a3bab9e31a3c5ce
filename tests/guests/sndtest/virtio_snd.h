/*
 * The parts of the virtio sound device (virtio 1.2 §5.14) sndtest uses,
 * written from the specification. Every field is little-endian, which on
 * x86 is the CPU's order: no conversions.
 *
 * Queues: 0 control, 1 event, 2 tx (playback data), 3 rx (capture data).
 */
#ifndef SNDTEST_VIRTIO_SND_H
#define SNDTEST_VIRTIO_SND_H

#include <stdint.h>

#define VSND_PCI_VENDOR 0x1af4
#define VSND_PCI_DEVICE 0x1059 /* 0x1040 + virtio device ID 25 */

#define VSND_VQ_CONTROL 0
#define VSND_VQ_EVENT   1
#define VSND_VQ_TX      2
#define VSND_VQ_RX      3
#define VSND_VQ_COUNT   4

/* Request codes, event types and status codes (one enumeration in the spec). */
#define VSND_R_JACK_INFO    0x0001
#define VSND_R_JACK_REMAP   0x0002
#define VSND_R_PCM_INFO     0x0100
#define VSND_R_PCM_SET_PARAMS 0x0101
#define VSND_R_PCM_PREPARE  0x0102
#define VSND_R_PCM_RELEASE  0x0103
#define VSND_R_PCM_START    0x0104
#define VSND_R_PCM_STOP     0x0105
#define VSND_R_CHMAP_INFO   0x0200

#define VSND_EVT_JACK_CONNECTED     0x1000
#define VSND_EVT_JACK_DISCONNECTED  0x1001
#define VSND_EVT_PCM_PERIOD_ELAPSED 0x1100
#define VSND_EVT_PCM_XRUN           0x1101

#define VSND_S_OK       0x8000
#define VSND_S_BAD_MSG  0x8001
#define VSND_S_NOT_SUPP 0x8002
#define VSND_S_IO_ERR   0x8003

/* Data flow directions. */
#define VSND_D_OUTPUT 0
#define VSND_D_INPUT  1

/* PCM sample formats (bit numbers of virtio_snd_pcm_info.formats): S16 is 5. */
#define VSND_PCM_FMT_S16 5

/* PCM frame rates (bit numbers of virtio_snd_pcm_info.rates). */
#define VSND_PCM_RATE_44100 6
#define VSND_PCM_RATE_48000 7

/* Jack features: REMAP is bit 0. */
#define VSND_JACK_F_REMAP 0

/* Channel positions (chmap), the first few of the spec's list. */
#define VSND_CHMAP_NONE 0
#define VSND_CHMAP_NA   1
#define VSND_CHMAP_MONO 2
#define VSND_CHMAP_FL   3
#define VSND_CHMAP_FR   4
#define VSND_CHMAP_LAST 36 /* BRC, the highest position the spec defines */
#define VSND_CHMAP_MAX_SIZE 18

/* Device configuration (device-specific config structure). */
struct vsnd_config {
	uint32_t jacks;
	uint32_t streams;
	uint32_t chmaps;
};

/* Control request header; the response starts with one too (the status). */
struct vsnd_hdr {
	uint32_t code;
};

/* JACK_INFO / PCM_INFO / CHMAP_INFO: items start_id .. start_id+count-1, each `size` bytes. */
struct vsnd_query_info {
	uint32_t code;
	uint32_t start_id;
	uint32_t count;
	uint32_t size;
};

struct vsnd_jack_info {
	uint32_t hda_fn_nid;
	uint32_t features;        /* 1 << VSND_JACK_F_* */
	uint32_t hda_reg_defconf; /* HDA pin "configuration default" register */
	uint32_t hda_reg_caps;    /* HDA pin capabilities */
	uint8_t connected;
	uint8_t padding[7];
};

struct vsnd_pcm_info {
	uint32_t hda_fn_nid;
	uint32_t features; /* 1 << VIRTIO_SND_PCM_F_* */
	uint64_t formats;  /* 1 << VSND_PCM_FMT_* */
	uint64_t rates;    /* 1 << VSND_PCM_RATE_* */
	uint8_t direction; /* VSND_D_* */
	uint8_t channels_min;
	uint8_t channels_max;
	uint8_t padding[5];
};

struct vsnd_chmap_info {
	uint32_t hda_fn_nid;
	uint8_t direction;
	uint8_t channels;
	uint8_t positions[VSND_CHMAP_MAX_SIZE];
};

/* PREPARE / RELEASE / START / STOP. */
struct vsnd_pcm_hdr {
	uint32_t code;
	uint32_t stream_id;
};

struct vsnd_pcm_set_params {
	uint32_t code;
	uint32_t stream_id;
	uint32_t buffer_bytes;
	uint32_t period_bytes;
	uint32_t features; /* 1 << VIRTIO_SND_PCM_F_*: none here */
	uint8_t channels;
	uint8_t format;
	uint8_t rate;
	uint8_t padding;
};

/* I/O request: xfer (readable), data, status (writable). */
struct vsnd_pcm_xfer {
	uint32_t stream_id;
};

struct vsnd_pcm_status {
	uint32_t status;
	uint32_t latency_bytes;
};

struct vsnd_event {
	uint32_t type;
	uint32_t data;
};

_Static_assert(sizeof(struct vsnd_config) == 12, "virtio_snd_config");
_Static_assert(sizeof(struct vsnd_query_info) == 16, "virtio_snd_query_info");
_Static_assert(sizeof(struct vsnd_jack_info) == 24, "virtio_snd_jack_info");
_Static_assert(sizeof(struct vsnd_pcm_info) == 32, "virtio_snd_pcm_info");
_Static_assert(sizeof(struct vsnd_chmap_info) == 24, "virtio_snd_chmap_info");
_Static_assert(sizeof(struct vsnd_pcm_set_params) == 24, "virtio_snd_pcm_set_params");
_Static_assert(sizeof(struct vsnd_pcm_status) == 8, "virtio_snd_pcm_status");
_Static_assert(sizeof(struct vsnd_event) == 8, "virtio_snd_event");

#endif
