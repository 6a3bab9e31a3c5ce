/*
 * Integer sine and tone analysis (see tone.h). Products that can outgrow
 * 64 bits use __int128, whose multiplications and shifts gcc emits inline
 * on x86-64 (no libgcc calls, no division of 128-bit values).
 */
#include "tone.h"

#define Q31 (1ll << 31)
#define PI_Q32 13493037705ull /* pi * 2^32, rounded */

/* x * y >> 31, rounded, for Q31 values whose product fits 63 bits. */
static inline int64_t mul31(int64_t x, int64_t y)
{
	return (x * y + (1ll << 30)) >> 31;
}

/* sin x and cos x for 0 <= x <= pi/4 (Q31), by their Taylor series in Horner form. */
static int64_t sin_poly(int64_t x)
{
	int64_t x2 = mul31(x, x), t = Q31;
	static const int64_t div[] = { 156, 110, 72, 42, 20, 6 }; /* (2k)(2k+1), k = 6..1 */

	for (unsigned i = 0; i < sizeof(div) / sizeof(div[0]); i++)
		t = Q31 - mul31(x2, t) / div[i];
	return mul31(x, t);
}

static int64_t cos_poly(int64_t x)
{
	int64_t x2 = mul31(x, x), t = Q31;
	static const int64_t div[] = { 182, 132, 90, 56, 30, 12, 2 }; /* (2k-1)(2k), k = 7..1 */

	for (unsigned i = 0; i < sizeof(div) / sizeof(div[0]); i++)
		t = Q31 - mul31(x2, t) / div[i];
	return t;
}

int32_t tone_sin_q30(uint32_t phase)
{
	unsigned quadrant = phase >> 30;
	uint64_t p = phase & ((1u << 30) - 1); /* within the quadrant: 2^30 = pi/2 */
	int64_t s, c;

	/* angle in Q31 = p / 2^30 * pi/2 * 2^31 = p * pi */
	if (p <= (1u << 29)) {
		int64_t x = (int64_t)((p * PI_Q32 + (1ull << 31)) >> 32);
		s = sin_poly(x);
		c = cos_poly(x);
	} else {
		int64_t x = (int64_t)((((1ull << 30) - p) * PI_Q32 + (1ull << 31)) >> 32);
		s = cos_poly(x);
		c = sin_poly(x);
	}
	int64_t v = (quadrant & 1) ? c : s;
	v = (v + 1) >> 1; /* Q31 -> Q30 */
	if (v > TONE_Q30)
		v = TONE_Q30;
	return (int32_t)(quadrant & 2 ? -v : v);
}

int32_t tone_cos_q30(uint32_t phase)
{
	return tone_sin_q30(phase + (1u << 30));
}

uint32_t tone_phase_inc(uint64_t freq_mhz, uint32_t rate)
{
	uint64_t den = (uint64_t)rate * 1000;

	return (uint32_t)(((freq_mhz << 32) + den / 2) / den);
}

void tone_gen_init(struct tone_gen *g, uint32_t freq_hz, uint32_t rate, int32_t amplitude)
{
	g->phase = 0;
	g->inc = tone_phase_inc((uint64_t)freq_hz * 1000, rate);
	g->amplitude = amplitude;
}

int16_t tone_gen_next(struct tone_gen *g)
{
	int64_t v = ((int64_t)g->amplitude * tone_sin_q30(g->phase) + (1ll << 29)) >> 30;

	g->phase += g->inc;
	if (v > 32767)
		v = 32767;
	if (v < -32768)
		v = -32768;
	return (int16_t)v;
}

void tone_gen_fill(struct tone_gen *g, int16_t *buf, size_t frames, unsigned channels)
{
	for (size_t i = 0; i < frames; i++) {
		int16_t v = tone_gen_next(g);

		for (unsigned c = 0; c < channels; c++)
			buf[i * channels + c] = v;
	}
}

/*
 * Goertzel: the squared magnitude of the DFT of x at the frequency whose
 * phase step is inc. s[n] = x[n] + 2cos(w) s[n-1] - s[n-2]; |X|^2 =
 * s1^2 + s2^2 - 2cos(w) s1 s2. With |x| < 2^15, n <= 2^16 and w no lower
 * than ~1 Hz at 48 kHz, |s| stays below 2^45 and every product below 2^121.
 */
static unsigned __int128 goertzel(const int16_t *x, size_t n, unsigned stride, uint32_t inc)
{
	int64_t c = 2 * (int64_t)tone_cos_q30(inc); /* Q30 */
	int64_t s1 = 0, s2 = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t s0 = (int64_t)x[i * stride] + (int64_t)(((__int128)c * s1 + (1 << 29)) >> 30) - s2;

		s2 = s1;
		s1 = s0;
	}
	__int128 p = (__int128)s1 * s1 + (__int128)s2 * s2 - ((((__int128)c * s1) * s2) >> 30);
	return p < 0 ? 0 : (unsigned __int128)p;
}

static unsigned __int128 power_at(const int16_t *x, size_t n, unsigned stride, uint32_t rate, uint64_t f_mhz)
{
	return goertzel(x, n, stride, tone_phase_inc(f_mhz, rate));
}

uint32_t tone_dominant_mhz(const int16_t *x, size_t frames, unsigned stride, uint32_t rate,
			   uint32_t lo_hz, uint32_t hi_hz)
{
	if (frames > TONE_MAX_FRAMES)
		frames = TONE_MAX_FRAMES;
	if (frames < 16 || rate < 1000 || stride == 0)
		return 0;
	bool any = false;
	for (size_t i = 0; i < frames && !any; i++)
		any = x[i * stride] != 0;
	if (!any)
		return 0;

	uint64_t lo = (uint64_t)(lo_hz < 1 ? 1 : lo_hz) * 1000;
	uint64_t hi = (uint64_t)hi_hz * 1000, top = (uint64_t)rate * 1000 / 2 - 1000;
	if (hi > top)
		hi = top;
	if (hi <= lo)
		return 0;

	/* Coarse: a grid of half the main lobe's half-width over the first 2048 frames. */
	size_t len = frames < 2048 ? frames : 2048;
	uint64_t step = (uint64_t)rate * 1000 / (2 * len), best = lo;
	unsigned __int128 bp = 0;
	if (step == 0)
		step = 1;
	for (uint64_t f = lo; f <= hi; f += step) {
		unsigned __int128 p = power_at(x, len, stride, rate, f);
		if (p > bp) {
			bp = p;
			best = f;
		}
	}

	/* Finer: each window twice as long, a grid twice as fine around the best point. */
	while (len < frames) {
		len = len * 2 < frames ? len * 2 : frames;
		uint64_t nstep = (uint64_t)rate * 1000 / (2 * len);
		uint64_t a = best > lo + step ? best - step : lo, b = best + step;
		if (nstep == 0)
			nstep = 1;
		bp = 0;
		for (uint64_t f = a; f <= b; f += nstep) {
			unsigned __int128 p = power_at(x, len, stride, rate, f);
			if (p > bp) {
				bp = p;
				best = f;
			}
		}
		step = nstep;
	}

	/* Finest: the peak is within the main lobe here, where |X| is unimodal. */
	uint64_t a = best > step + 1 ? best - step : 1, b = best + step;
	while (b - a > 2) {
		uint64_t m1 = a + (b - a) / 3, m2 = b - (b - a) / 3;

		if (power_at(x, len, stride, rate, m1) < power_at(x, len, stride, rate, m2))
			a = m1;
		else
			b = m2;
	}
	bp = 0;
	for (uint64_t f = a; f <= b; f++) {
		unsigned __int128 p = power_at(x, len, stride, rate, f);
		if (p > bp) {
			bp = p;
			best = f;
		}
	}
	return (uint32_t)best;
}

uint32_t tone_dominant_median_mhz(const int16_t *x, size_t frames, unsigned stride, uint32_t rate,
				  uint32_t lo_hz, uint32_t hi_hz)
{
	if (frames > TONE_MAX_FRAMES)
		frames = TONE_MAX_FRAMES;
	if (frames < 2 * TONE_WINDOW_FRAMES)
		return tone_dominant_mhz(x, frames, stride, rate, lo_hz, hi_hz);

	uint32_t found[TONE_MAX_FRAMES / TONE_WINDOW_FRAMES];
	unsigned n = 0;
	for (size_t at = 0; at + TONE_WINDOW_FRAMES <= frames; at += TONE_WINDOW_FRAMES) {
		uint32_t mhz = tone_dominant_mhz(x + at * stride, TONE_WINDOW_FRAMES, stride, rate, lo_hz, hi_hz);
		if (mhz == 0)
			continue; /* silent */
		/* insertion sort: at most 16 */
		unsigned k = n++;
		for (; k > 0 && found[k - 1] > mhz; k--)
			found[k] = found[k - 1];
		found[k] = mhz;
	}
	return n ? found[(n - 1) / 2] : 0;
}

uint64_t tone_isqrt(uint64_t v)
{
	uint64_t r = 0, bit = 1ull << 62;

	while (bit > v)
		bit >>= 2;
	while (bit) {
		if (v >= r + bit) {
			v -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

static inline uint32_t iabs(int32_t v)
{
	return v < 0 ? (uint32_t)-(int64_t)v : (uint32_t)v;
}

void tone_measure_level(const int16_t *x, size_t samples, struct tone_level *out)
{
	uint64_t sum = 0;
	uint32_t peak = 0;

	for (size_t i = 0; i < samples; i++) {
		int32_t v = x[i];
		uint32_t a = iabs(v);

		sum += (uint64_t)((int64_t)v * v);
		if (a > peak)
			peak = a;
	}
	out->peak = peak;
	out->rms = samples ? (uint32_t)tone_isqrt((sum + samples / 2) / samples) : 0;
}

bool tone_silent(const int16_t *x, size_t samples, uint32_t max_abs)
{
	for (size_t i = 0; i < samples; i++)
		if (iabs(x[i]) > max_abs)
			return false;
	return true;
}

void tone_check_continuity(const int16_t *x, size_t frames, unsigned stride, size_t period_frames,
			   uint32_t rate, uint32_t freq_mhz, struct tone_continuity *out)
{
	int64_t c = freq_mhz ? 2 * (int64_t)tone_cos_q30(tone_phase_inc(freq_mhz, rate)) : 2ll << 30;
	uint32_t wj = 0, bj = 0, wr = 0, br = 0;

	for (size_t n = 1; n < frames; n++) {
		int32_t x0 = x[n * stride], x1 = x[(n - 1) * stride];
		uint32_t jump = iabs(x0 - x1);
		bool boundary = period_frames && n % period_frames == 0;

		if (boundary && jump > bj)
			bj = jump;
		if (!boundary && jump > wj)
			wj = jump;
		if (n < 2)
			continue;
		int64_t pred = ((c * x1 + (1 << 29)) >> 30) - x[(n - 2) * stride];
		int64_t d = x0 - pred;
		uint32_t r = (uint32_t)(d < 0 ? -d : d);
		/* x[n-2], x[n-1], x[n] span a boundary at n or at n-1 */
		boundary = period_frames && (n % period_frames == 0 || n % period_frames == 1);
		if (boundary && r > br)
			br = r;
		if (!boundary && r > wr)
			wr = r;
	}
	out->within_jump = wj;
	out->boundary_jump = bj;
	out->within_resid = wr;
	out->boundary_resid = br;
	out->continuous = (uint64_t)bj <= (uint64_t)wj + wj / 4 + 16 && (uint64_t)br <= 3ull * wr + 16;
}

uint32_t tone_fnv1a(uint32_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}
