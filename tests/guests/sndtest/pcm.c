/*
 * The PCM roles: play (a sine to stream 0), record (stream 1, analysed)
 * and loop (every captured period played back unchanged).
 *
 * Each stream goes SET_PARAMS -> PREPARE -> requests queued -> START ->
 * ... -> STOP -> RELEASE. Exactly `periods` requests are submitted per
 * stream, at most buffer_periods at a time, each refilled and resubmitted
 * as soon as it comes back, so nothing is left with the device at STOP.
 */
#include "guest.h"
#include "snd.h"
#include "tone.h"

#define STREAM_OUT 0
#define STREAM_IN  1

struct run_stats {
	uint64_t t0, t1;        /* TSC: START sent, last completion */
	uint32_t completed, submitted;
	uint32_t bad_status, bad_len;
	uint32_t starved;       /* completions that left the device nothing while more was to come */
	uint32_t min_queued;    /* fewest requests with the device after a completion (while more was to come) */
	uint32_t latency_max;
	uint32_t odd_tx_len;    /* tx completions whose used len is not 8 (reported, not a failure) */
};

static uint32_t period_bytes(const struct options *o)
{
	return o->period_frames * o->channels * 2;
}

static uint64_t cycles_to_ms(uint64_t c)
{
	uint64_t per_ms = tsc_hz() / 1000;

	return per_ms ? c / per_ms : 0;
}

static uint64_t expected_ms(const struct options *o, uint32_t periods)
{
	return (uint64_t)periods * o->period_frames * 1000 / o->rate;
}

static bool ok(uint32_t status, const char *what, uint32_t stream)
{
	if (status == VSND_S_OK)
		return true;
	printf("sndtest: FAIL: %s stream %u: %s (%#x)\n", what, stream, snd_status_name(status), status);
	return false;
}

static bool stream_open(const struct options *o, uint32_t stream)
{
	uint32_t pb = period_bytes(o);

	return ok(snd_pcm_set_params(stream, pb * o->buffer_periods, pb, (uint8_t)o->channels, VSND_PCM_FMT_S16,
				     o->rate_index),
		  "PCM_SET_PARAMS", stream) &&
	       ok(snd_pcm_command(VSND_R_PCM_PREPARE, stream), "PCM_PREPARE", stream);
}

static bool stream_close(uint32_t stream)
{
	bool stopped = ok(snd_pcm_command(VSND_R_PCM_STOP, stream), "PCM_STOP", stream);

	return ok(snd_pcm_command(VSND_R_PCM_RELEASE, stream), "PCM_RELEASE", stream) && stopped;
}

/* Waits for the next completion on queue; exits with EXIT_TIMEOUT after timeout_ms without one. */
static struct snd_io *wait_io(unsigned queue, const char *what, uint32_t done, uint32_t total)
{
	uint64_t deadline = deadline_ms(snd.timeout_ms);
	struct snd_io *io;
	char msg[128];

	while ((io = snd_io_reap(queue)) == NULL) {
		snd_service();
		if (deadline_passed(deadline)) {
			snprintf(msg, sizeof(msg), "no %s request came back in %lu ms (%u of %u done)", what,
				 snd.timeout_ms, done, total);
			snd_timeout(msg);
		}
		cpu_relax();
	}
	return io;
}

/* Accounts one completion: its status, its used length (rx: data + status). */
static void account(struct run_stats *s, struct snd_io *io, bool rx, uint32_t total)
{
	uint32_t status = io->status->status, latency = io->status->latency_bytes;

	s->completed++;
	s->t1 = rdtsc();
	if (status != VSND_S_OK) {
		if (s->bad_status++ < 5)
			printf("sndtest: %s request %u: status %s (%#x)\n", rx ? "rx" : "tx", s->completed,
			       snd_status_name(status), status);
	} else if (latency > s->latency_max) {
		s->latency_max = latency;
	}
	if (rx && io->used_len != io->bytes + sizeof(struct vsnd_pcm_status)) {
		if (s->bad_len++ < 5)
			printf("sndtest: rx request %u: used len %u, want %lu\n", s->completed, io->used_len,
			       io->bytes + sizeof(struct vsnd_pcm_status));
	}
	if (!rx && io->used_len != sizeof(struct vsnd_pcm_status))
		s->odd_tx_len++;
	uint32_t queued = s->submitted - s->completed;
	if (s->submitted < total) {
		if (queued == 0)
			s->starved++;
		if (queued < s->min_queued)
			s->min_queued = queued;
	}
}

/* The device must take a period per period-time: not much faster, not far slower. */
static bool paced(const struct options *o, const struct run_stats *s, const char *what)
{
	uint64_t got = cycles_to_ms(s->t1 - s->t0), want = expected_ms(o, s->completed);
	uint64_t period = expected_ms(o, 1);

	if (!o->pace || !strncmp(tsc_source(), "default", 8))
		return true; /* no trustworthy clock, or asked not to */
	if (got + period < want * 9 / 10) {
		printf("sndtest: FAIL: %s: %u periods came back in %lu ms, real time is %lu ms\n", what,
		       s->completed, got, want);
		return false;
	}
	if (got > want * 3 / 2 + 1000) {
		printf("sndtest: FAIL: %s: %u periods took %lu ms, real time is %lu ms\n", what, s->completed, got,
		       want);
		return false;
	}
	return true;
}

static void print_hz(const char *prefix, uint32_t mhz)
{
	uint32_t d = (mhz + 50) / 100;

	printf("%s%u.%u", prefix, d / 10, d % 10);
}

int role_play(const struct options *o)
{
	uint32_t pb = period_bytes(o), n = o->periods;
	uint32_t b = o->buffer_periods < n ? o->buffer_periods : n;
	struct run_stats s = { .min_queued = b };
	struct tone_gen g;
	uint32_t fnv = TONE_FNV_INIT;

	if (snd_io_room(VSND_VQ_TX) < b) {
		printf("sndtest: buffer_periods=%u: the tx queue holds %u requests\n", b, snd_io_room(VSND_VQ_TX));
		return EXIT_USAGE;
	}
	tone_gen_init(&g, o->freq, o->rate, (int32_t)o->amplitude);
	if (!stream_open(o, STREAM_OUT))
		return EXIT_FAIL;
	struct snd_io *io = snd_io_alloc(b, pb);
	for (uint32_t i = 0; i < b; i++) {
		tone_gen_fill(&g, (int16_t *)io[i].data, o->period_frames, o->channels);
		fnv = tone_fnv1a(fnv, io[i].data, pb);
		snd_io_submit(VSND_VQ_TX, STREAM_OUT, &io[i]);
		s.submitted++;
	}
	snd_kick(VSND_VQ_TX);
	s.t0 = s.t1 = rdtsc();
	if (!ok(snd_pcm_command(VSND_R_PCM_START, STREAM_OUT), "PCM_START", STREAM_OUT))
		return EXIT_FAIL;
	while (s.completed < n) {
		struct snd_io *r = wait_io(VSND_VQ_TX, "tx", s.completed, n);

		account(&s, r, false, n);
		if (s.submitted < n) {
			tone_gen_fill(&g, (int16_t *)r->data, o->period_frames, o->channels);
			fnv = tone_fnv1a(fnv, r->data, pb);
			snd_io_submit(VSND_VQ_TX, STREAM_OUT, r);
			s.submitted++;
			snd_kick(VSND_VQ_TX);
		}
	}
	bool closed = stream_close(STREAM_OUT);

	printf("sndtest: played %u periods\n", s.completed);
	printf("sndtest: play stats freq=%u rate=%u channels=%u period_frames=%u buffer_periods=%u "
	       "min_queued=%u starved=%u latency_max=%u elapsed_ms=%lu expected_ms=%lu tx_fnv=%#010x "
	       "bad_status=%u odd_tx_len=%u\n",
	       o->freq, o->rate, o->channels, o->period_frames, b, s.min_queued, s.starved, s.latency_max,
	       cycles_to_ms(s.t1 - s.t0), expected_ms(o, n), fnv, s.bad_status, s.odd_tx_len);
	bool pass = closed && s.bad_status == 0;
	if (s.bad_status)
		printf("sndtest: FAIL: %u tx requests came back with a bad status\n", s.bad_status);
	pass &= paced(o, &s, "tx");
	return pass ? EXIT_PASS : EXIT_FAIL;
}

/* Analyses channel ch of the periods [first, n) of a recording. */
struct channel_result {
	uint32_t dominant_mhz;
	struct tone_continuity cont;
};

static void analyse_channel(const struct options *o, const int16_t *rec, uint32_t frames, unsigned ch,
			    struct channel_result *r)
{
	uint32_t hi = o->scan_hi;

	r->dominant_mhz = tone_dominant_median_mhz(rec + ch, frames, o->channels, o->rate, o->scan_lo, hi);
	tone_check_continuity(rec + ch, frames, o->channels, o->period_frames, o->rate, r->dominant_mhz, &r->cont);
}

int role_record(const struct options *o)
{
	uint32_t pb = period_bytes(o), n = o->periods, spp = o->period_frames * o->channels;
	uint32_t b = o->buffer_periods < n ? o->buffer_periods : n;
	struct run_stats s = { .min_queued = b };
	uint32_t fnv = TONE_FNV_INIT;

	if (snd_io_room(VSND_VQ_RX) < b) {
		printf("sndtest: buffer_periods=%u: the rx queue holds %u requests\n", b, snd_io_room(VSND_VQ_RX));
		return EXIT_USAGE;
	}
	int16_t *rec = dma_alloc((uint64_t)n * pb, 64);
	if (!stream_open(o, STREAM_IN))
		return EXIT_FAIL;
	struct snd_io *io = snd_io_alloc(b, pb);
	for (uint32_t i = 0; i < b; i++) {
		snd_io_submit(VSND_VQ_RX, STREAM_IN, &io[i]);
		s.submitted++;
	}
	snd_kick(VSND_VQ_RX);
	s.t0 = s.t1 = rdtsc();
	if (!ok(snd_pcm_command(VSND_R_PCM_START, STREAM_IN), "PCM_START", STREAM_IN))
		return EXIT_FAIL;
	while (s.completed < n) {
		struct snd_io *r = wait_io(VSND_VQ_RX, "rx", s.completed, n);

		/* periods come back in capture order: the used ring's order */
		memcpy(rec + (uint64_t)s.completed * spp, r->data, pb);
		fnv = tone_fnv1a(fnv, r->data, pb);
		account(&s, r, true, n);
		if (o->stall_ms && s.completed == o->stall_at) {
			uint64_t until = deadline_ms(o->stall_ms);

			while (!deadline_passed(until))
				cpu_relax();
		}
		if (s.submitted < n) {
			snd_io_submit(VSND_VQ_RX, STREAM_IN, r);
			s.submitted++;
			snd_kick(VSND_VQ_RX);
		}
	}
	bool closed = stream_close(STREAM_IN);

	/* Silent periods; the analysis starts at the first one that is not. */
	uint32_t silent = 0, first = n;
	for (uint32_t p = 0; p < n; p++) {
		bool quiet = tone_silent(rec + (uint64_t)p * spp, spp, o->silence_max);

		silent += quiet;
		if (!quiet && first == n)
			first = p;
	}
	uint32_t frames = (n - first) * o->period_frames;
	const int16_t *from = rec + (uint64_t)first * spp;
	struct channel_result cr[2] = { 0 };
	struct tone_level lv = { 0 };
	bool continuous = true;
	if (frames) {
		tone_measure_level(from, (uint64_t)frames * o->channels, &lv);
		for (unsigned c = 0; c < o->channels; c++) {
			analyse_channel(o, from, frames, c, &cr[c]);
			continuous &= cr[c].cont.continuous;
		}
	}

	printf("sndtest: recorded %u periods", s.completed);
	print_hz(" dominant=", cr[0].dominant_mhz);
	printf(" Hz level=%u continuous=%s\n", lv.rms, continuous ? "yes" : "no");
	printf("sndtest: record stats rate=%u channels=%u period_frames=%u buffer_periods=%u peak=%u "
	       "silent_periods=%u skipped=%u",
	       o->rate, o->channels, o->period_frames, b, lv.peak, silent, first == n ? n : first);
	if (o->channels > 1)
		print_hz(" dominant_ch1=", cr[1].dominant_mhz);
	for (unsigned c = 0; c < o->channels; c++)
		printf(" ch%u_jump=%u/%u ch%u_resid=%u/%u", c, cr[c].cont.boundary_jump, cr[c].cont.within_jump, c,
		       cr[c].cont.boundary_resid, cr[c].cont.within_resid);
	printf(" min_queued=%u starved=%u latency_max=%u elapsed_ms=%lu expected_ms=%lu rx_fnv=%#010x "
	       "bad_status=%u bad_len=%u\n",
	       s.min_queued, s.starved, s.latency_max, cycles_to_ms(s.t1 - s.t0), expected_ms(o, n), fnv,
	       s.bad_status, s.bad_len);

	bool pass = closed;
	if (s.bad_status || s.bad_len) {
		printf("sndtest: FAIL: %u rx requests with a bad status, %u with a bad length\n", s.bad_status,
		       s.bad_len);
		pass = false;
	}
	if (o->silence) {
		if (silent != n) {
			printf("sndtest: FAIL: %u of %u periods are not silent (|sample| > %u)\n", n - silent, n,
			       o->silence_max);
			pass = false;
		}
	} else {
		if (o->expect) {
			uint64_t want = (uint64_t)o->expect * 1000, got = cr[0].dominant_mhz;
			uint64_t diff = got > want ? got - want : want - got;
			if (diff * 100 > want) {
				print_hz("sndtest: FAIL: dominant ", (uint32_t)got);
				printf(" Hz is not within 1%% of expect=%u\n", o->expect);
				pass = false;
			}
		}
		if (lv.rms < o->min_level) {
			printf("sndtest: FAIL: level %u < min_level=%u\n", lv.rms, o->min_level);
			pass = false;
		}
		if (o->continuous && !continuous) {
			printf("sndtest: FAIL: the recording is not continuous across periods\n");
			pass = false;
		}
	}
	pass &= paced(o, &s, "rx");
	return pass ? EXIT_PASS : EXIT_FAIL;
}

int role_loop(const struct options *o)
{
	uint32_t pb = period_bytes(o), n = o->periods;
	uint32_t b = o->buffer_periods < n ? o->buffer_periods : n;
	uint32_t prefill = o->prefill ? (o->prefill < n ? o->prefill : n) : 1;
	uint32_t pool = b + prefill; /* tx requests: what may wait to be played */
	struct run_stats rs = { .min_queued = b }, ts = { .min_queued = pool };
	uint32_t fnv = TONE_FNV_INIT;
	bool tx_started = false;

	if (snd_io_room(VSND_VQ_RX) < b || snd_io_room(VSND_VQ_TX) < pool) {
		printf("sndtest: buffer_periods=%u prefill=%u: the queues hold %u rx and %u tx requests\n", b,
		       prefill, snd_io_room(VSND_VQ_RX), snd_io_room(VSND_VQ_TX));
		return EXIT_USAGE;
	}
	if (!stream_open(o, STREAM_OUT) || !stream_open(o, STREAM_IN))
		return EXIT_FAIL;
	struct snd_io *rx = snd_io_alloc(b, pb), *tx = snd_io_alloc(pool, pb);
	struct snd_io **tx_free = dma_alloc(sizeof(struct snd_io *) * pool, 8);
	uint32_t nfree = pool;
	for (uint32_t i = 0; i < pool; i++)
		tx_free[i] = &tx[i];
	for (uint32_t i = 0; i < b; i++) {
		snd_io_submit(VSND_VQ_RX, STREAM_IN, &rx[i]);
		rs.submitted++;
	}
	snd_kick(VSND_VQ_RX);
	rs.t0 = rs.t1 = rdtsc();
	if (!ok(snd_pcm_command(VSND_R_PCM_START, STREAM_IN), "PCM_START", STREAM_IN))
		return EXIT_FAIL;

	uint64_t deadline = deadline_ms(snd.timeout_ms);
	char msg[128];
	while (ts.completed < n) {
		struct snd_io *r;
		bool progress = false;

		/* played periods free their tx requests */
		while ((r = snd_io_reap(VSND_VQ_TX)) != NULL) {
			account(&ts, r, false, n);
			tx_free[nfree++] = r;
			progress = true;
		}
		/* a captured period goes out as it came in, once a tx request is free */
		if (nfree && rs.completed < n && (r = snd_io_reap(VSND_VQ_RX)) != NULL) {
			struct snd_io *t = tx_free[--nfree];

			memcpy(t->data, r->data, pb);
			fnv = tone_fnv1a(fnv, r->data, pb);
			account(&rs, r, true, n);
			if (rs.submitted < n) {
				snd_io_submit(VSND_VQ_RX, STREAM_IN, r);
				rs.submitted++;
				snd_kick(VSND_VQ_RX);
			}
			snd_io_submit(VSND_VQ_TX, STREAM_OUT, t);
			ts.submitted++;
			snd_kick(VSND_VQ_TX);
			if (!tx_started && (ts.submitted >= prefill || ts.submitted == n)) {
				ts.t0 = ts.t1 = rdtsc();
				if (!ok(snd_pcm_command(VSND_R_PCM_START, STREAM_OUT), "PCM_START", STREAM_OUT))
					return EXIT_FAIL;
				tx_started = true;
			}
			progress = true;
		}
		if (progress) {
			deadline = deadline_ms(snd.timeout_ms);
			continue;
		}
		snd_service();
		if (deadline_passed(deadline)) {
			snprintf(msg, sizeof(msg),
				 "loop: nothing came back in %lu ms (rx %u of %u, tx %u of %u done)", snd.timeout_ms,
				 rs.completed, n, ts.completed, n);
			snd_timeout(msg);
		}
		cpu_relax();
	}
	bool closed = stream_close(STREAM_IN);
	closed &= stream_close(STREAM_OUT);

	printf("sndtest: looped %u periods\n", ts.completed);
	printf("sndtest: loop stats rate=%u channels=%u period_frames=%u buffer_periods=%u prefill=%u "
	       "rx_fnv=%#010x rx_latency_max=%u tx_latency_max=%u tx_starved=%u elapsed_ms=%lu expected_ms=%lu "
	       "bad_status=%u bad_len=%u\n",
	       o->rate, o->channels, o->period_frames, b, prefill, fnv, rs.latency_max, ts.latency_max,
	       ts.starved, cycles_to_ms(ts.t1 - rs.t0), expected_ms(o, n + prefill), rs.bad_status + ts.bad_status,
	       rs.bad_len);
	bool pass = closed;
	if (rs.bad_status || ts.bad_status || rs.bad_len) {
		printf("sndtest: FAIL: bad status rx %u tx %u, bad rx length %u\n", rs.bad_status, ts.bad_status,
		       rs.bad_len);
		pass = false;
	}
	pass &= paced(o, &rs, "rx");
	return pass ? EXIT_PASS : EXIT_FAIL;
}
