/*
 * Tones in integer arithmetic: a sine generator and the analysis of a
 * recording (dominant frequency by Goertzel, level, silence, continuity
 * across period boundaries). No floating point (guests build with
 * -mgeneral-regs-only) and nothing from the guest toolkit, so the host
 * compiles the same file for its unit check (tone_check.c,
 * tests/integration/sndtest_tone.sh).
 *
 * Phases are fractions of a turn in 32 bits (2^32 = 2*pi); sines and
 * cosines are Q30 (2^30 = 1.0); frequencies are in millihertz.
 */
#ifndef SNDTEST_TONE_H
#define SNDTEST_TONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TONE_Q30 (1 << 30)

/* sin and cos of phase/2^32 turns, Q30, within a few units of 2^-30. */
int32_t tone_sin_q30(uint32_t phase);
int32_t tone_cos_q30(uint32_t phase);

/* The phase step per sample of freq_mhz at rate frames/s (rounded). */
uint32_t tone_phase_inc(uint64_t freq_mhz, uint32_t rate);

/* A phase-accumulator sine: amplitude * sin(phase), rounded. */
struct tone_gen {
	uint32_t phase, inc;
	int32_t amplitude; /* 0..32767 */
};

void tone_gen_init(struct tone_gen *g, uint32_t freq_hz, uint32_t rate, int32_t amplitude);
int16_t tone_gen_next(struct tone_gen *g);
/* frames frames of `channels` interleaved samples, the same on every channel. */
void tone_gen_fill(struct tone_gen *g, int16_t *buf, size_t frames, unsigned channels);

/*
 * The strongest frequency between lo_hz and hi_hz in the channel starting
 * at x (frames samples, stride apart), in mHz; 0 if the channel is silent
 * (all zero) or too short. Goertzel on a coarse grid over the first 2048
 * frames, then on windows twice as long around the best point, then a
 * ternary search on the whole length (at most TONE_MAX_FRAMES): within a
 * few mHz of a pure tone's frequency when the recording covers more than
 * a few tenths of a second.
 */
#define TONE_MAX_FRAMES 65536
uint32_t tone_dominant_mhz(const int16_t *x, size_t frames, unsigned stride, uint32_t rate,
			   uint32_t lo_hz, uint32_t hi_hz);

/*
 * The same, robust to a recording with gaps (silent, dropped or repeated
 * periods, as a cable gives when its player falls behind): the median of
 * tone_dominant_mhz over windows of TONE_WINDOW_FRAMES, silent windows
 * left out. A window that spans a gap can be off by up to half a lobe;
 * the median is not, while most windows are clean. A recording shorter
 * than two windows is measured whole.
 */
#define TONE_WINDOW_FRAMES 4096
uint32_t tone_dominant_median_mhz(const int16_t *x, size_t frames, unsigned stride, uint32_t rate,
				  uint32_t lo_hz, uint32_t hi_hz);

struct tone_level {
	uint32_t rms;  /* root mean square over all samples, rounded */
	uint32_t peak; /* largest |sample| (32768 for -32768) */
};

void tone_measure_level(const int16_t *x, size_t samples, struct tone_level *out);

/* True if no sample's magnitude exceeds max_abs. */
bool tone_silent(const int16_t *x, size_t samples, uint32_t max_abs);

/*
 * Whether a recording made of periods of period_frames frames runs on
 * smoothly across the period boundaries, judged on one channel (x, stride
 * apart) that is expected to be a tone of freq_mhz (0: unknown, then the
 * plain second difference serves as the predictor). Two measures, each as
 * the largest value at a boundary (a window of samples that spans one)
 * against the largest value anywhere inside a period:
 *  - jump: |x[n] - x[n-1]| (a sine's is at most 2*pi*f/rate*amplitude);
 *  - residual: |x[n] - (2cos(w) x[n-1] - x[n-2])|, the error of the
 *    two-term recurrence every sine obeys (a few units for a clean one).
 * A dropped, repeated or zeroed period, or a slip of a sample, shows at a
 * boundary as a residual far above what the periods themselves have. (A
 * dropped period holding a whole number of cycles cannot show.)
 */
struct tone_continuity {
	uint32_t within_jump, boundary_jump;
	uint32_t within_resid, boundary_resid;
	bool continuous;
};

void tone_check_continuity(const int16_t *x, size_t frames, unsigned stride, size_t period_frames,
			   uint32_t rate, uint32_t freq_mhz, struct tone_continuity *out);

/* FNV-1a (32-bit) over n bytes, continuing from h (start with TONE_FNV_INIT). */
#define TONE_FNV_INIT 0x811c9dc5u
uint32_t tone_fnv1a(uint32_t h, const void *p, size_t n);

/* floor(sqrt(v)). */
uint64_t tone_isqrt(uint64_t v);

#endif
