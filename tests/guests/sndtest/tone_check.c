/*
 * Host check of tone.c, the guest's integer sine and analysis, against
 * libm (built and run by tests/integration/sndtest_tone.sh):
 *   gcc -O2 -o tone_check tone.c tone_check.c -lm && ./tone_check
 * Prints one line per check group and "tone_check: PASS", exit 0; any
 * failed check prints "FAIL: ..." and makes the exit status 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tone.h"

static int failures;

#define CHECK(cond, ...)                                   \
	do {                                               \
		if (!(cond)) {                             \
			printf("FAIL: " __VA_ARGS__);      \
			printf("\n");                      \
			failures++;                        \
		}                                          \
	} while (0)

/* A double sine (libm) rounded to S16: amplitude * sin(2 pi f t + phase0). */
static void make_sine(int16_t *buf, size_t frames, unsigned stride, double f, unsigned rate,
		      double amplitude, double phase0)
{
	for (size_t i = 0; i < frames; i++) {
		double v = amplitude * sin(2 * M_PI * f * (double)i / rate + phase0);
		buf[i * stride] = (int16_t)lrint(v);
	}
}

static uint32_t lcg = 12345;
static int noise(int amp) /* uniform in [-amp, amp] */
{
	lcg = lcg * 1103515245u + 12345u;
	return amp ? (int)((lcg >> 8) % (2u * amp + 1)) - amp : 0;
}

static void check_sine_accuracy(void)
{
	double worst = 0;
	for (uint64_t p = 0; p < (1ull << 32); p += 4099) {
		double want = sin(2 * M_PI * (double)p / 4294967296.0);
		double got = tone_sin_q30((uint32_t)p) / (double)TONE_Q30;
		double e = fabs(got - want);
		if (e > worst)
			worst = e;
		double wc = cos(2 * M_PI * (double)p / 4294967296.0);
		double gc = tone_cos_q30((uint32_t)p) / (double)TONE_Q30;
		if (fabs(gc - wc) > worst)
			worst = fabs(gc - wc);
	}
	CHECK(worst < 4e-9, "sin/cos worst error %.3g (limit 4e-9)", worst);
	CHECK(tone_sin_q30(0) == 0 && tone_sin_q30(1u << 30) == TONE_Q30 && tone_sin_q30(3u << 30) == -TONE_Q30 &&
		      tone_cos_q30(0) == TONE_Q30,
	      "sin/cos at the quadrant points: %d %d %d %d", tone_sin_q30(0), tone_sin_q30(1u << 30),
	      tone_sin_q30(3u << 30), tone_cos_q30(0));
	printf("sine: worst |error| %.3g over 1M phases\n", worst);
}

/* The generator against libm: within 1 LSB for a second of samples. */
static void check_generator(void)
{
	static const unsigned rates[] = { 44100, 48000 };
	static const unsigned freqs[] = { 440, 1000, 3000, 19000 };
	int worst = 0;

	for (unsigned r = 0; r < 2; r++)
		for (unsigned k = 0; k < 4; k++) {
			struct tone_gen g;
			tone_gen_init(&g, freqs[k], rates[r], 16384);
			for (unsigned i = 0; i < rates[r]; i++) {
				double want = 16384 * sin(2 * M_PI * freqs[k] * (double)i / rates[r]);
				int d = abs(tone_gen_next(&g) - (int)lrint(want));
				if (d > worst)
					worst = d;
			}
		}
	CHECK(worst <= 1, "generator off libm by %d LSB", worst);
	/* stereo fill repeats each sample on both channels, phase runs on */
	struct tone_gen g, h;
	int16_t buf[2 * 100];
	tone_gen_init(&g, 440, 48000, 16384);
	tone_gen_init(&h, 440, 48000, 16384);
	tone_gen_fill(&g, buf, 50, 2);
	tone_gen_fill(&g, buf + 100, 50, 2);
	int bad = 0;
	for (int i = 0; i < 100; i++) {
		int16_t v = tone_gen_next(&h);
		bad += buf[2 * i] != v || buf[2 * i + 1] != v;
	}
	CHECK(bad == 0, "tone_gen_fill: %d frames differ from tone_gen_next", bad);
	printf("generator: worst %d LSB off libm (440/1000/3000/19000 Hz at 44.1/48 kHz)\n", worst);
}

/* Detection of f in `periods` periods of rate/100 frames, channel 0 of `channels`. */
static double detect(double f, unsigned rate, unsigned channels, unsigned periods, double amplitude,
		     int noise_amp, double harmonic)
{
	size_t frames = (size_t)rate / 100 * periods;
	int16_t *buf = calloc(frames * channels, sizeof(int16_t));

	for (size_t i = 0; i < frames; i++) {
		double t = (double)i / rate;
		double v = amplitude * sin(2 * M_PI * f * t + 0.3) + harmonic * amplitude * sin(2 * M_PI * 3 * f * t);
		buf[i * channels] = (int16_t)lrint(v) + noise(noise_amp);
		if (channels > 1) /* another tone on the right channel, to catch stride mistakes */
			buf[i * channels + 1] = (int16_t)lrint(12000 * sin(2 * M_PI * 2345.0 * t));
	}
	uint32_t mhz = tone_dominant_mhz(buf, frames, channels, rate, 50, 5000);
	free(buf);
	return mhz / 1000.0;
}

static void check_detection(void)
{
	static const unsigned rates[] = { 44100, 48000 };
	static const double freqs[] = { 440, 1000, 3000, 123.4, 997, 4321.7 };
	double worst = 0;
	unsigned runs = 0;

	for (unsigned r = 0; r < 2; r++)
		for (unsigned k = 0; k < sizeof(freqs) / sizeof(freqs[0]); k++)
			for (unsigned ch = 1; ch <= 2; ch++) {
				struct {
					unsigned periods;
					double amp;
					int noise;
					double harmonic;
				} cases[] = { { 100, 16384, 0, 0 }, { 20, 16384, 0, 0 }, { 50, 300, 20, 0.3 },
					      { 300, 16384, 2000, 0.5 } };
				for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
					double got = detect(freqs[k], rates[r], ch, cases[c].periods, cases[c].amp,
							    cases[c].noise, cases[c].harmonic);
					double err = fabs(got - freqs[k]);
					CHECK(err < 0.5 && err < freqs[k] * 0.005,
					      "%.1f Hz at %u Hz, %u ch, %u periods, amp %.0f noise %d: got %.3f Hz",
					      freqs[k], rates[r], ch, cases[c].periods, cases[c].amp, cases[c].noise,
					      got);
					if (err > worst)
						worst = err;
					runs++;
				}
			}
	/* the guest's own generator, as role=play sends it */
	for (unsigned r = 0; r < 2; r++) {
		unsigned rate = rates[r];
		size_t frames = rate; /* one second */
		int16_t *buf = malloc(frames * 2 * sizeof(int16_t));
		struct tone_gen g;
		tone_gen_init(&g, 440, rate, 16384);
		tone_gen_fill(&g, buf, frames, 2);
		double got = tone_dominant_mhz(buf, frames, 2, rate, 50, 5000) / 1000.0;
		CHECK(fabs(got - 440) < 0.5, "tone_gen 440 Hz at %u: detected %.3f", rate, got);
		free(buf);
	}
	printf("detection: %u runs, worst error %.4f Hz\n", runs, worst);
}

/*
 * A cable's recording when its player fell behind: leading silence, a
 * zeroed period and two dropped ones (the tone jumps on by a period's
 * phase). The median over windows still finds the tone.
 */
static void check_gaps(void)
{
	const unsigned rate = 48000, period = 480, periods = 100;
	static int16_t buf[48000 * 2];
	struct tone_gen g;

	tone_gen_init(&g, 440, rate, 12000);
	memset(buf, 0, sizeof(buf));
	for (unsigned p = 0; p < periods; p++) {
		int16_t *at = buf + (size_t)p * period * 2;
		if (p < 7 || p == 61) {
			continue; /* silence */
		}
		if (p == 30 || p == 80) { /* a period the cable dropped */
			int16_t scratch[480 * 2];
			tone_gen_fill(&g, scratch, period, 2);
		}
		tone_gen_fill(&g, at, period, 2);
	}
	double got = tone_dominant_median_mhz(buf, (size_t)periods * period, 2, rate, 50, 5000) / 1000.0;
	CHECK(fabs(got - 440) < 440 * 0.01, "440 Hz with gaps: the median over windows found %.3f Hz", got);
	CHECK(tone_dominant_median_mhz(buf, 2000, 2, rate, 50, 5000) == 0, "a silent short recording has a tone");
	printf("gaps: 440 Hz with silence and dropped periods found at %.3f Hz\n", got);
}

static void check_level_and_silence(void)
{
	static int16_t buf[48000 * 2];
	struct tone_level lv;

	memset(buf, 0, sizeof(buf));
	CHECK(tone_silent(buf, 96000, 0), "zeros are not silent");
	CHECK(tone_dominant_mhz(buf, 48000, 2, 48000, 50, 5000) == 0, "silence has a dominant frequency");
	tone_measure_level(buf, 96000, &lv);
	CHECK(lv.rms == 0 && lv.peak == 0, "silence: rms %u peak %u", lv.rms, lv.peak);
	buf[777] = -3;
	CHECK(!tone_silent(buf, 96000, 0) && tone_silent(buf, 96000, 3) && !tone_silent(buf, 96000, 2),
	      "silence threshold");
	buf[777] = -32768;
	tone_measure_level(buf, 96000, &lv);
	CHECK(lv.peak == 32768, "peak of -32768: %u", lv.peak);

	make_sine(buf, 48000, 1, 1000, 48000, 16384, 0);
	tone_measure_level(buf, 48000, &lv);
	CHECK(abs((int)lv.rms - 11585) <= 2 && lv.peak == 16384, "half-scale sine: rms %u (11585) peak %u",
	      lv.rms, lv.peak);
	CHECK(tone_isqrt(0) == 0 && tone_isqrt(1) == 1 && tone_isqrt(15) == 3 && tone_isqrt(16) == 4 &&
		      tone_isqrt(~0ull) == 0xffffffffull,
	      "isqrt");
	printf("level: half-scale sine rms %u peak %u; silence checks\n", lv.rms, lv.peak);
}

/* A recording of `periods` periods of pf frames; `mutate` damages it at period k. */
enum damage { NONE, DROP_PERIOD, ZERO_PERIOD, REPEAT_PERIOD, DROP_SAMPLE, NOISE_ONLY };

static bool continuous(double f, unsigned rate, unsigned channels, enum damage dmg, unsigned k,
		       struct tone_continuity *tc)
{
	unsigned pf = rate / 100, periods = 40;
	size_t frames = (size_t)pf * (periods + 1);
	int16_t *src = calloc(frames * channels, sizeof(int16_t));
	int16_t *rec = calloc(frames * channels, sizeof(int16_t));

	for (size_t i = 0; i < frames; i++)
		for (unsigned c = 0; c < channels; c++)
			src[i * channels + c] = (int16_t)lrint(16384 * sin(2 * M_PI * f * (double)i / rate + 0.5 + c));
	size_t fs = (size_t)pf * channels; /* samples per period */
	size_t n = (size_t)periods * fs;
	memcpy(rec, src, n * sizeof(int16_t));
	switch (dmg) {
	case NONE:
		break;
	case DROP_PERIOD: /* period k+1 recorded where k should be */
		memcpy(rec + k * fs, src + (k + 1) * fs, (n - k * fs) * sizeof(int16_t));
		break;
	case ZERO_PERIOD:
		memset(rec + k * fs, 0, fs * sizeof(int16_t));
		break;
	case REPEAT_PERIOD:
		memcpy(rec + k * fs, src + (k - 1) * fs, fs * sizeof(int16_t));
		memcpy(rec + (k + 1) * fs, src + k * fs, (n - (k + 1) * fs) * sizeof(int16_t));
		break;
	case DROP_SAMPLE: /* from period k on, one frame late */
		memcpy(rec + k * fs, src + k * fs + channels, (n - k * fs) * sizeof(int16_t));
		break;
	case NOISE_ONLY:
		for (size_t i = 0; i < n; i++)
			rec[i] = (int16_t)(rec[i] + noise(40));
		break;
	}
	tone_check_continuity(rec, (size_t)periods * pf, channels, pf, rate, (uint32_t)lrint(f * 1000), tc);
	free(src);
	free(rec);
	return tc->continuous;
}

static void check_continuity(void)
{
	static const unsigned rates[] = { 44100, 48000 };
	static const double freqs[] = { 440, 1000, 3000, 997 };
	struct tone_continuity tc;
	unsigned runs = 0;

	for (unsigned r = 0; r < 2; r++)
		for (unsigned k = 0; k < 4; k++)
			for (unsigned ch = 1; ch <= 2; ch++) {
				double f = freqs[k];
				unsigned rate = rates[r];
				CHECK(continuous(f, rate, ch, NONE, 0, &tc),
				      "clean %.0f Hz at %u: boundary jump %u resid %u vs %u %u", f, rate,
				      tc.boundary_jump, tc.boundary_resid, tc.within_jump, tc.within_resid);
				CHECK(continuous(f, rate, ch, NOISE_ONLY, 0, &tc), "noisy %.0f Hz at %u: resid %u vs %u",
				      f, rate, tc.boundary_resid, tc.within_resid);
				for (unsigned at = 3; at < 40; at += 7) {
					CHECK(!continuous(f, rate, ch, ZERO_PERIOD, at, &tc),
					      "zeroed period %u of %.0f Hz at %u not seen", at, f, rate);
					CHECK(!continuous(f, rate, ch, DROP_SAMPLE, at, &tc),
					      "a frame lost at period %u of %.0f Hz at %u not seen (resid %u vs %u)", at,
					      f, rate, tc.boundary_resid, tc.within_resid);
					/* a period of a whole number of cycles drops without a trace */
					double cycles = f / 100;
					if (fabs(cycles - lrint(cycles)) > 0.05) {
						CHECK(!continuous(f, rate, ch, DROP_PERIOD, at, &tc),
						      "dropped period %u of %.0f Hz at %u not seen (resid %u vs %u)", at,
						      f, rate, tc.boundary_resid, tc.within_resid);
						CHECK(!continuous(f, rate, ch, REPEAT_PERIOD, at, &tc),
						      "repeated period %u of %.0f Hz at %u not seen", at, f, rate);
					}
					runs += 4;
				}
				runs += 2;
			}
	/* unknown frequency (0): the second difference as predictor */
	CHECK(continuous(440, 48000, 2, NONE, 0, &tc), "clean 440, no frequency given");
	int16_t z[4800] = { 0 };
	tone_check_continuity(z, 4800, 1, 480, 48000, 0, &tc);
	CHECK(tc.continuous, "silence is continuous");
	printf("continuity: %u runs\n", runs);
}

static void check_fnv(void)
{
	CHECK(tone_fnv1a(TONE_FNV_INIT, "", 0) == 0x811c9dc5u, "fnv1a empty");
	CHECK(tone_fnv1a(TONE_FNV_INIT, "a", 1) == 0xe40c292cu, "fnv1a(a)");
	CHECK(tone_fnv1a(tone_fnv1a(TONE_FNV_INIT, "foo", 3), "bar", 3) == tone_fnv1a(TONE_FNV_INIT, "foobar", 6) &&
		      tone_fnv1a(TONE_FNV_INIT, "foobar", 6) == 0xbf9cf968u,
	      "fnv1a(foobar) = %#x", tone_fnv1a(TONE_FNV_INIT, "foobar", 6));
	printf("fnv1a: ok\n");
}

int main(void)
{
	check_sine_accuracy();
	check_generator();
	check_detection();
	check_gaps();
	check_level_and_silence();
	check_continuity();
	check_fnv();
	if (failures) {
		printf("tone_check: %d FAILED\n", failures);
		return 1;
	}
	printf("tone_check: PASS\n");
	return 0;
}
