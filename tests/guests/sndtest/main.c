/*
 * sndtest.elf: a polled test kernel for virtio-snd (1AF4:1059, virtio 1.2
 * §5.14): brings the device up, checks what it says about itself, then
 * plays, records or loops PCM.
 *
 * Command line (key=value words, all optional):
 *   role=info|play|record|loop   (default info: bring-up and checks only)
 *   rate=48000|44100 channels=1|2 periods=N (100) period_frames=F (rate/100: 10 ms)
 *   buffer_periods=B (4: requests kept with the device per stream)
 *   play:   freq=HZ (440) amp=A (16384: half scale)
 *   record: expect=HZ (dominant frequency within 1%) min_level=RMS (0)
 *           silence=1 (pass only if every period is silent) silence_max=A (0)
 *           continuous=1 (a discontinuity across periods fails the run)
 *           scan_lo=HZ scan_hi=HZ (50..5000, or up to 2*expect: the search range)
 *           stall_at=K stall_ms=S (0: none): after the K-th period came back, wait S ms
 *           before queuing again (a guest that falls behind: a file input must lose nothing)
 *   loop:   prefill=P (2: captured periods queued before playback starts)
 *   events=1          print jack events as they arrive: `sndtest: jack J connected|disconnected`
 *   wait_jack=connected|disconnected [jack=J] [wait_jack_ms=T (30000)]
 *                     before the role, wait until jack J (default: 0, the headphone, for
 *                     play; 1, the microphone, otherwise) is in that state (already, per
 *                     JACK_INFO, or by an event; after an event JACK_INFO must agree)
 *   hold_ms=H         after the role, keep handling events for H ms
 *   timeout_ms=T      per request (default max(5000, 4 * B periods))
 *   overall_ms=T      the whole run (default 30 s + 3x the audio time + waits)
 *   pace=0            skip the real-time check (requests must come back at one
 *                     period per period-time, within -10%/+50%+1 s; skipped
 *                     anyway when the TSC frequency is a guess)
 *   notify_always=1   notify on every kick, ignoring VIRTQ_USED_F_NO_NOTIFY
 *   strict=0          what the device says of itself (config, JACK/PCM/CHMAP_INFO) is
 *                     checked against xover's device but a difference is only a WARN
 *                     line: for other implementations (QEMU's virtio-sound-pci)
 *   tsc_khz=K         the TSC frequency (toolkit)
 *
 * Output: `sndtest: virtio-snd at ...`, `sndtest: config jacks=2 streams=2
 * chmaps=2`, one line per jack, PCM stream and channel map, then the
 * role's lines:
 *   sndtest: played N periods
 *   sndtest: recorded N periods dominant=XXXX.X Hz level=RMS continuous=yes|no
 *   sndtest: looped N periods
 * each followed by a `... stats ...` line, then `sndtest: PASS` or
 * `sndtest: FAIL` (every failed check has printed its own `sndtest: FAIL: ...`).
 *
 * Exit status (the debug-exit port; QEMU reports (status << 1) | 1):
 *   0 pass
 *   1 a check failed (the device is not what it promises, a request came
 *     back with a bad status or length, a wrong tone, ...)
 *   2 bad command line, or a rate/channel count the device does not offer
 *   3 a CPU exception (toolkit: EXIT_FAULT)
 *   4 panic, e.g. out of memory (toolkit: EXIT_PANIC)
 *   5 no virtio-snd device: `sndtest: no virtio-snd device`
 *   6 timeout: the device did not answer a request in time, or the run
 *     outlasted overall_ms (`sndtest: timeout: ...`)
 */
#include "guest.h"
#include "snd.h"
#include "tone.h"

static const char *const position_names[VSND_CHMAP_LAST + 1] = {
	"NONE", "NA",  "MONO", "FL",  "FR",  "RL",  "RR",  "FC",   "LFE",  "SL",  "SR",  "RC",  "FLC",
	"FRC",  "RLC", "RRC",  "FLW", "FRW", "FLH", "FCH", "FRH",  "TC",   "TFL", "TFR", "TFC", "TRL",
	"TRR",  "TRC", "TFLC", "TFRC", "TSL", "TSR", "LLFE", "RLFE", "BC",  "BLC", "BRC",
};

static unsigned failures;
static bool strict = true; /* strict=0: what the device says of itself is only printed */

__attribute__((format(printf, 1, 2))) static void check_failed(const char *fmt, ...)
{
	va_list ap;

	printf("sndtest: FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

/* The device's description differs from xover's (a failure unless strict=0). */
__attribute__((format(printf, 1, 2))) static void mismatch(const char *fmt, ...)
{
	va_list ap;

	printf("sndtest: %s: ", strict ? "FAIL" : "WARN");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures += strict;
}

static const char *dir_name(uint8_t d)
{
	return d == VSND_D_OUTPUT ? "output" : d == VSND_D_INPUT ? "input" : "?";
}

/* A bad command line: says why, and parse_options returns false. */
#define USAGE(...) (printf("sndtest: " __VA_ARGS__), printf("\n"), false)

struct extra {
	int wait_jack; /* -1: none, else the state to wait for */
	uint32_t jack;
	uint64_t wait_jack_ms, hold_ms, overall_ms, timeout_ms;
	bool notify_always;
};

static bool parse_options(struct options *o, struct extra *x)
{
	char buf[32];

	o->role = ROLE_INFO;
	if (cmdline_get("role", buf, sizeof(buf))) {
		if (!strncmp(buf, "info", 5))
			o->role = ROLE_INFO;
		else if (!strncmp(buf, "play", 5))
			o->role = ROLE_PLAY;
		else if (!strncmp(buf, "record", 7))
			o->role = ROLE_RECORD;
		else if (!strncmp(buf, "loop", 5))
			o->role = ROLE_LOOP;
		else
			return USAGE("role=%s unknown (info, play, record, loop)", buf);
	}
	o->rate = (uint32_t)cmdline_uint("rate", 48000);
	if (o->rate == 48000)
		o->rate_index = VSND_PCM_RATE_48000;
	else if (o->rate == 44100)
		o->rate_index = VSND_PCM_RATE_44100;
	else
		return USAGE("rate=%u: 48000 or 44100", o->rate);
	o->channels = (uint32_t)cmdline_uint("channels", 2);
	if (o->channels < 1 || o->channels > 2)
		return USAGE("channels=%u: 1 or 2", o->channels);
	o->freq = (uint32_t)cmdline_uint("freq", 440);
	if (o->freq < 1 || o->freq >= o->rate / 2)
		return USAGE("freq=%u: between 1 Hz and half the rate", o->freq);
	o->amplitude = (uint32_t)cmdline_uint("amp", 16384);
	if (o->amplitude > 32767)
		return USAGE("amp=%u: at most 32767", o->amplitude);
	o->periods = (uint32_t)cmdline_uint("periods", 100);
	if (o->periods < 1 || o->periods > 1000000)
		return USAGE("periods=%u: 1 .. 1000000", o->periods);
	o->period_frames = (uint32_t)cmdline_uint("period_frames", o->rate / 100);
	if (o->period_frames < 16 || o->period_frames > 65536)
		return USAGE("period_frames=%u: 16 .. 65536", o->period_frames);
	o->buffer_periods = (uint32_t)cmdline_uint("buffer_periods", 4);
	if (o->buffer_periods < 1 || o->buffer_periods > 64)
		return USAGE("buffer_periods=%u: 1 .. 64", o->buffer_periods);
	o->prefill = (uint32_t)cmdline_uint("prefill", 2);
	if (o->prefill < 1 || o->prefill > 64)
		return USAGE("prefill=%u: 1 .. 64", o->prefill);
	o->expect = (uint32_t)cmdline_uint("expect", 0);
	if (o->expect >= o->rate / 2)
		return USAGE("expect=%u: below half the rate", o->expect);
	o->min_level = (uint32_t)cmdline_uint("min_level", 0);
	o->silence = cmdline_uint("silence", 0) != 0;
	o->silence_max = (uint32_t)cmdline_uint("silence_max", 0);
	o->continuous = cmdline_uint("continuous", 0) != 0;
	o->pace = cmdline_uint("pace", 1) != 0;
	o->scan_lo = (uint32_t)cmdline_uint("scan_lo", 50);
	o->scan_hi = (uint32_t)cmdline_uint("scan_hi", o->expect * 2 > 5000 ? o->expect * 2 : 5000);
	o->stall_at = (uint32_t)cmdline_uint("stall_at", 0);
	o->stall_ms = (uint32_t)cmdline_uint("stall_ms", 0);
	if (o->stall_ms > 60000)
		return USAGE("stall_ms=%u: at most 60000", o->stall_ms);
	if (o->silence && (o->expect || o->min_level))
		return USAGE("silence=1 goes with neither expect= nor min_level=");

	snd.print_events = cmdline_uint("events", 0) != 0;
	x->wait_jack = -1;
	if (cmdline_get("wait_jack", buf, sizeof(buf))) {
		if (!strncmp(buf, "connected", 10))
			x->wait_jack = 1;
		else if (!strncmp(buf, "disconnected", 13))
			x->wait_jack = 0;
		else
			return USAGE("wait_jack=%s: connected or disconnected", buf);
	}
	x->jack = (uint32_t)cmdline_uint("jack", o->role == ROLE_PLAY ? 0 : 1);
	x->wait_jack_ms = cmdline_uint("wait_jack_ms", 30000);
	x->hold_ms = cmdline_uint("hold_ms", 0);
	uint64_t period_ms = (uint64_t)o->period_frames * 1000 / o->rate + 1;
	uint64_t audio_ms = (uint64_t)o->periods * period_ms * (o->role == ROLE_LOOP ? 2 : 1);
	x->timeout_ms = cmdline_uint("timeout_ms", 4 * o->buffer_periods * period_ms > 5000
							   ? 4 * o->buffer_periods * period_ms
							   : 5000);
	x->overall_ms = cmdline_uint("overall_ms", 30000 + 3 * audio_ms + (x->wait_jack >= 0 ? x->wait_jack_ms : 0) +
							   x->hold_ms);
	x->notify_always = cmdline_uint("notify_always", 0) != 0;
	strict = cmdline_uint("strict", 1) != 0;
	return true;
}

/* JACK_INFO, PCM_INFO and CHMAP_INFO: one line per item, and the checks. */
static bool query_and_check(struct vsnd_pcm_info *pcm)
{
	static struct vsnd_jack_info jacks[SND_MAX_JACKS];
	static struct vsnd_chmap_info chmaps[8];
	uint32_t nj = snd.cfg.jacks, ns = snd.cfg.streams, nc = snd.cfg.chmaps;
	uint32_t status;

	printf("sndtest: config jacks=%u streams=%u chmaps=%u\n", nj, ns, nc);
	if (nj != 2 || ns != 2 || nc != 2)
		mismatch("config: want jacks=2 streams=2 chmaps=2");
	if (nj > SND_MAX_JACKS || ns > 8 || nc > 8 || ns < 2) {
		check_failed("config: too many (or too few) items to query");
		return false;
	}

	status = nj ? snd_query_info(VSND_R_JACK_INFO, 0, nj, sizeof(struct vsnd_jack_info), jacks) : VSND_S_OK;
	if (status != VSND_S_OK) {
		mismatch("JACK_INFO: %s (%#x)", snd_status_name(status), status);
	} else {
		for (uint32_t j = 0; j < nj; j++) {
			struct vsnd_jack_info *ji = &jacks[j];
			uint32_t device = (ji->hda_reg_defconf >> 20) & 0xf; /* HDA default device */

			printf("sndtest: jack %u connected=%u features=%#x defconf=%#x caps=%#x nid=%u\n", j,
			       ji->connected, ji->features, ji->hda_reg_defconf, ji->hda_reg_caps, ji->hda_fn_nid);
			if (ji->connected > 1)
				mismatch("jack %u: connected=%u is not 0 or 1", j, ji->connected);
			else
				snd.jack_connected[j] = ji->connected;
			/* jack 0 is the headphone (HDA "HP Out", 2), jack 1 the microphone ("Mic In", 0xa) */
			if (ji->hda_reg_defconf && j < 2 && device != (j == 0 ? 0x2u : 0xau))
				mismatch("jack %u: defconf default device %#x, want %#x (%s)", j, device,
					     j == 0 ? 0x2u : 0xau, j == 0 ? "HP Out" : "Mic In");
		}
	}

	status = snd_query_info(VSND_R_PCM_INFO, 0, ns, sizeof(struct vsnd_pcm_info), pcm);
	if (status != VSND_S_OK) {
		check_failed("PCM_INFO: %s (%#x)", snd_status_name(status), status);
		return false;
	}
	for (uint32_t s = 0; s < ns; s++) {
		struct vsnd_pcm_info *p = &pcm[s];
		uint8_t want_dir = s == 0 ? VSND_D_OUTPUT : VSND_D_INPUT;
		uint64_t want_rates = (1ull << VSND_PCM_RATE_44100) | (1ull << VSND_PCM_RATE_48000);

		printf("sndtest: pcm %u %s formats=%#lx rates=%#lx channels=%u..%u features=%#x nid=%u\n", s,
		       dir_name(p->direction), p->formats, p->rates, p->channels_min, p->channels_max, p->features,
		       p->hda_fn_nid);
		if (s < 2 && p->direction != want_dir)
			mismatch("pcm %u: direction %s, want %s", s, dir_name(p->direction), dir_name(want_dir));
		if (p->formats != 1ull << VSND_PCM_FMT_S16)
			mismatch("pcm %u: formats %#lx, want S16 only (%#llx)", s, p->formats,
				     1ull << VSND_PCM_FMT_S16);
		/* A card offers both rates and 1..2 channels, or (a crossover card: its
		 * link's format) exactly one rate and one channel count of those. */
		bool full = p->rates == want_rates && p->channels_min == 1 && p->channels_max == 2;
		bool single = (p->rates == 1ull << VSND_PCM_RATE_44100 || p->rates == 1ull << VSND_PCM_RATE_48000) &&
			      p->channels_min == p->channels_max && p->channels_min >= 1 && p->channels_max <= 2;
		if (!full && !single)
			mismatch("pcm %u: rates %#lx channels %u..%u, want 44100 and 48000 (%#lx) with 1..2, "
				 "or one of them with one channel count",
				 s, p->rates, p->channels_min, p->channels_max, want_rates);
		if (p->features)
			mismatch("pcm %u: features %#x, want none", s, p->features);
	}

	if (!nc)
		return true;
	status = snd_query_info(VSND_R_CHMAP_INFO, 0, nc, sizeof(struct vsnd_chmap_info), chmaps);
	if (status != VSND_S_OK) {
		mismatch("CHMAP_INFO: %s (%#x)", snd_status_name(status), status);
		return true;
	}
	unsigned seen_dir[2] = { 0, 0 };
	for (uint32_t c = 0; c < nc; c++) {
		struct vsnd_chmap_info *m = &chmaps[c];
		char pos[VSND_CHMAP_MAX_SIZE * 6 + 1];
		size_t len = 0;
		uint64_t used = 0;
		bool bad_pos = false;

		pos[0] = '\0';
		for (unsigned i = 0; i < m->channels && i < VSND_CHMAP_MAX_SIZE; i++) {
			uint8_t p = m->positions[i];

			len += (size_t)snprintf(pos + len, sizeof(pos) - len, "%s%s", i ? "," : "",
					       p <= VSND_CHMAP_LAST ? position_names[p] : "?");
			if (p > VSND_CHMAP_LAST || (used & (1ull << p)))
				bad_pos = true;
			else
				used |= 1ull << p;
		}
		printf("sndtest: chmap %u %s channels=%u positions=%s nid=%u\n", c, dir_name(m->direction),
		       m->channels, pos, m->hda_fn_nid);
		if (m->direction > VSND_D_INPUT) {
			mismatch("chmap %u: direction %u", c, m->direction);
			continue;
		}
		seen_dir[m->direction]++;
		if (m->channels < 1 || m->channels > 2)
			mismatch("chmap %u: %u channels, the streams have 1..2", c, m->channels);
		if (bad_pos)
			mismatch("chmap %u: positions %s (unknown or repeated)", c, pos);
	}
	if (nc == 2 && (seen_dir[0] != 1 || seen_dir[1] != 1))
		mismatch("chmaps: want one for output and one for input");
	return true;
}

/* wait_jack=: until jack j is in state `want`. */
static int wait_jack(const struct extra *x)
{
	uint32_t j = x->jack;
	const char *name = x->wait_jack ? "connected" : "disconnected";
	uint64_t t0 = rdtsc(), deadline = deadline_ms(x->wait_jack_ms);
	bool by_event = false;
	char msg[96];

	if (j >= snd.cfg.jacks || j >= SND_MAX_JACKS) {
		printf("sndtest: jack=%u: the device has %u jacks\n", j, snd.cfg.jacks);
		return EXIT_USAGE;
	}
	while (snd.jack_connected[j] != x->wait_jack) {
		uint64_t before = snd.jack_events;

		snd_service();
		by_event |= snd.jack_events != before;
		if (deadline_passed(deadline)) {
			snprintf(msg, sizeof(msg), "jack %u was not %s within %lu ms (wait_jack_ms=)", j, name,
				 x->wait_jack_ms);
			snd_timeout(msg);
		}
		cpu_relax();
	}
	printf("sndtest: wait_jack: jack %u %s after %lu ms (%s)\n", j, name,
	       (rdtsc() - t0) / (tsc_hz() / 1000), by_event ? "event" : "already");
	if (by_event) {
		static struct vsnd_jack_info ji;
		uint32_t status = snd_query_info(VSND_R_JACK_INFO, j, 1, sizeof(ji), &ji);

		if (status != VSND_S_OK) {
			check_failed("JACK_INFO for jack %u: %s (%#x)", j, snd_status_name(status), status);
			return EXIT_FAIL;
		}
		if (ji.connected != (uint8_t)x->wait_jack) {
			check_failed("jack %u: the event said %s, JACK_INFO says connected=%u", j, name,
				     ji.connected);
			return EXIT_FAIL;
		}
	}
	return EXIT_PASS;
}

int main(void)
{
	struct options o = { 0 };
	struct extra x = { 0 };
	struct vsnd_pcm_info pcm[8];
	int rc = EXIT_PASS;

	if (!parse_options(&o, &x))
		return EXIT_USAGE;
	struct pci_dev *dev = pci_find(VSND_PCI_VENDOR, VSND_PCI_DEVICE);
	if (!dev) {
		printf("sndtest: no virtio-snd device\n");
		return EXIT_NO_DEVICE;
	}
	snd.timeout_ms = x.timeout_ms;
	snd.deadline = deadline_ms(x.overall_ms);
	if (!snd_probe(dev, x.notify_always))
		return EXIT_FAIL;
	printf("sndtest: virtio-snd at %02x:%02x.%x features=%#lx (offered %#lx) queues=%u sizes=%u/%u/%u/%u "
	       "tsc_hz=%lu (%s)\n",
	       dev->bus, dev->dev, dev->fn, snd.features, snd.offered, snd.num_queues, snd.queue_size[0],
	       snd.queue_size[1], snd.queue_size[2], snd.queue_size[3], tsc_hz(), tsc_source());

	if (!query_and_check(pcm) || failures) {
		printf("sndtest: FAIL\n");
		return EXIT_FAIL;
	}
	if (x.wait_jack >= 0 && (rc = wait_jack(&x)) != EXIT_PASS) {
		printf("sndtest: FAIL\n");
		return rc;
	}

	/* The streams the role uses must offer its format (a crossover card offers one). */
	for (uint32_t s = 0; s < 2 && o.role != ROLE_INFO; s++) {
		bool used = o.role == ROLE_LOOP || (s == 0) == (o.role == ROLE_PLAY);
		if (used && (!(pcm[s].rates & (1ull << o.rate_index)) || o.channels < pcm[s].channels_min ||
			     o.channels > pcm[s].channels_max)) {
			printf("sndtest: rate=%u channels=%u: pcm %u offers rates %#lx, channels %u..%u\n", o.rate,
			       o.channels, s, pcm[s].rates, pcm[s].channels_min, pcm[s].channels_max);
			return EXIT_USAGE;
		}
	}

	switch (o.role) {
	case ROLE_INFO:
		break;
	case ROLE_PLAY:
		rc = role_play(&o);
		break;
	case ROLE_RECORD:
		rc = role_record(&o);
		break;
	case ROLE_LOOP:
		rc = role_loop(&o);
		break;
	}

	if (x.hold_ms) {
		uint64_t end = deadline_ms(x.hold_ms);
		while (!deadline_passed(end)) {
			snd_service();
			cpu_relax();
		}
	}
	snd_poll_events();
	printf("sndtest: events jack=%lu pcm=%lu other=%lu bad=%lu\n", snd.jack_events, snd.pcm_events,
	       snd.other_events, snd.bad_events);
	if (snd.bad_events && rc == EXIT_PASS) {
		check_failed("%lu malformed events", snd.bad_events);
		rc = EXIT_FAIL;
	}
	printf("sndtest: %s\n", rc == EXIT_PASS ? "PASS" : "FAIL");
	return rc;
}
