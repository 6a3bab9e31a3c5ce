/*
 * Throughput roles.
 *   role=tx count=N size=S dst=MAC [batch=B] [gap_ns=G] [hold_ms=H]: N
 *   frames, one doorbell per B; with G, no faster than one frame per G ns
 *   on average (a peer without flow control, like QEMU's -netdev dgram,
 *   drops the excess). With H, it stays up H ms after its RESULT line
 *   before it exits: seen with QEMU 7.2 here, a -netdev stream end whose
 *   peer hangs up while it still holds frames for its guest crashes, so a
 *   bench keeps the sender's end open until the receiver is done.
 *   role=rx count=N [delay_ns=D] [start_timeout_ms=S]: counts frames until
 *   N are accounted for (received or known lost from gaps in the sequence)
 *   and checks every one, spending D ns on each (a receiver slower than its
 *   sender). It waits S ms for the first frame (a slow-booting sender),
 *   timeout_ms= for each later one (default S = timeout_ms).
 *   With run_ms=R it stops after R ms instead (a soak: scripts/chaos.sh),
 *   and with restarts=1 a sequence starting over at 0 is a sender that was
 *   restarted (counted, not an error); gaps are still losses.
 *   reload_at=N (tx, rx): once N frames are sent (tx: right after their
 *   doorbell, without waiting for them) or received (rx), the driver is
 *   reloaded: the device reset and its rings set up again (a guest's
 *   `ip link set down/up`). What the rings held then is lost; the sequence
 *   goes on, so rx counts those frames as lost, and any damaged frame is
 *   still an error.
 *   role=txrx: both at once, see role_txrx().
 * Cycles are TSC ticks from the first frame to the last.
 */
#include "frame.h"
#include "guest.h"
#include "nettest.h"

uint8_t *tx_slot_wait(struct nic *nic, uint64_t timeout_ms)
{
	uint8_t *buf = nic_tx_slot(nic);
	uint64_t deadline;

	if (buf)
		return buf;
	deadline = deadline_ms(timeout_ms);
	while (!(buf = nic_tx_slot(nic))) {
		nic_tx_pending(nic);
		if (deadline_passed(deadline))
			return NULL;
		cpu_relax();
	}
	return buf;
}

bool tx_drain(struct nic *nic, uint64_t timeout_ms)
{
	uint64_t deadline = deadline_ms(timeout_ms);

	while (nic_tx_pending(nic))
		if (deadline_passed(deadline))
			return false;
	return true;
}

/* gap_ns= pacing: frame i is due at start + i * gap. A sender held up
 * (its vCPU descheduled on a loaded host, its ring full) falls behind that
 * schedule by at most one batch: it does not catch up in a burst at full
 * rate, which a receiver sized for the average rate (a UDP socket's
 * buffer, a software switch) would drop. */
struct pacer {
	uint64_t per_frame; /* TSC cycles per frame; 0: not paced */
	uint64_t origin;
};

static struct pacer pacer_start(uint64_t gap_ns)
{
	struct pacer p = { gap_ns * (tsc_hz() / 1000000) / 1000, rdtsc() };

	return p;
}

/* When frame `sent` is due (the schedule moved on past a hold-up). */
static uint64_t pacer_due(struct pacer *p, uint64_t sent, unsigned batch)
{
	uint64_t now = rdtsc(), latest = p->origin + (sent + batch) * p->per_frame;

	if ((int64_t)(now - latest) > 0)
		p->origin += now - latest;
	return p->origin + sent * p->per_frame;
}

static bool pacer_allows(struct pacer *p, uint64_t sent, unsigned batch)
{
	return !p->per_frame || (int64_t)(rdtsc() - pacer_due(p, sent, batch)) >= 0;
}

static void pacer_wait(struct pacer *p, struct nic *nic, uint64_t sent, unsigned batch)
{
	if (!p->per_frame)
		return;
	uint64_t due = pacer_due(p, sent, batch);

	while ((int64_t)(rdtsc() - due) < 0)
		nic_tx_pending(nic);
}

/* reload_at=: see the top of this file. */
static void reload(struct nic *nic, uint64_t frames)
{
	if (!nic_reload(nic))
		panic("nettest: the driver reload after %lu frames failed", frames);
	printf("nettest: driver reloaded after %lu frames\n", frames);
}

int role_tx(struct nic *nic, const struct options *o)
{
	uint64_t sent = 0, start = rdtsc();
	struct pacer pace = pacer_start(o->gap_ns);

	if (!o->have_dst || !o->count) {
		printf("nettest: role=tx needs count= and dst=\n");
		return 2;
	}
	while (sent < o->count) {
		unsigned queued = 0;

		while (queued < o->batch && sent < o->count) {
			uint8_t *buf = queued ? nic_tx_slot(nic) : tx_slot_wait(nic, o->timeout_ms);

			if (!buf)
				break; /* ring full: send what we have first */
			test_frame_build(buf, o->dst, nic->mac, (uint32_t)sent, o->size);
			nic_tx_commit(nic, o->size);
			queued++;
			sent++;
		}
		if (!queued) {
			printf("nettest: tx ring stuck after %lu frames\n", sent);
			nic_dump(nic);
			break;
		}
		nic_tx_kick(nic);
		if (o->reload_at && sent >= o->reload_at && sent - queued < o->reload_at)
			reload(nic, sent);
		pacer_wait(&pace, nic, sent, o->batch);
	}
	bool drained = tx_drain(nic, o->timeout_ms);
	uint64_t cycles = rdtsc() - start;

	printf("RESULT role=tx frames=%lu bytes=%lu cycles=%lu\n", sent, sent * o->size, cycles);
	delay_ms(o->hold_ms);
	return sent == o->count && drained ? 0 : 1;
}

void spin_ns(uint64_t ns)
{
	uint64_t until = rdtsc() + ns * (tsc_hz() / 1000000) / 1000;

	while ((int64_t)(rdtsc() - until) < 0)
		cpu_relax();
}

/* restarts=1: a sequence that falls back to below this, from more than
 * this above it, is a new run of the sender, not a reordered frame. */
#define RESTART_SLACK 4096u

bool rx_tally_frame(struct rx_tally *t, const uint8_t *f, uint16_t len)
{
	uint32_t seq;
	enum frame_status st = test_frame_check(f, len, &seq);

	if (st == FRAME_OTHER || (st == FRAME_OK && seq == SEQ_PROBE))
		return false;
	t->last = rdtsc();
	if (!t->frames && !t->lost)
		t->start = t->last;
	t->frames++;
	t->bytes += len;
	if (st == FRAME_CORRUPT) {
		t->errors++;
	} else if (seq >= t->expected) {
		t->lost += seq - t->expected;
		t->expected = seq + 1;
	} else if (t->restarts && (seq == 0 || (seq < RESTART_SLACK && t->expected - seq > RESTART_SLACK))) {
		/* A sender that was killed and started again: what the old run
		 * had in flight is gone with it, nothing after it may be. A
		 * new run seen first at seq > 0 lost its first frames: they
		 * count as lost (not as a stream of reordered frames until the
		 * old run's sequence is passed). */
		if (seq)
			printf("nettest: a restarted sender's first frame seen was seq %u\n", seq);
		t->restarted++;
		t->lost += seq;
		t->expected = seq + 1;
	} else {
		t->errors++; /* duplicated or reordered */
	}
	return true;
}

/* After a timeout: frames never seen at the end of the run are lost too. */
static void rx_tally_close(struct rx_tally *t, uint64_t count)
{
	if (t->frames + t->lost < count)
		t->lost = count > t->frames ? count - t->frames : 0;
}

int role_rx(struct nic *nic, const struct options *o)
{
	struct rx_tally t = { .restarts = o->restarts };
	uint64_t deadline = deadline_ms(o->start_timeout_ms);
	uint64_t run_end = o->run_ms ? deadline_ms(o->run_ms) : 0;
	bool timed_out = false;

	if (!o->count && !o->run_ms) {
		printf("nettest: role=rx needs count= or run_ms=\n");
		return 2;
	}
	while (o->run_ms || t.frames + t.lost < o->count) {
		uint16_t len;
		const uint8_t *f = nic_rx_peek(nic, &len);

		if (run_end && deadline_passed(run_end))
			break;
		if (!f) {
			if (deadline_passed(deadline)) {
				timed_out = true;
				break;
			}
			continue;
		}
		bool counted = rx_tally_frame(&t, f, len);
		if (counted) {
			if (o->delay_ns)
				spin_ns(o->delay_ns); /* a slow consumer: the ring fills up */
			deadline = deadline_ms(o->timeout_ms);
		}
		nic_rx_done(nic);
		if (counted && o->reload_at && t.frames == o->reload_at)
			reload(nic, t.frames);
	}
	if (timed_out) {
		printf("nettest: rx timeout after %lu ms without a frame\n", o->timeout_ms);
		nic_dump(nic);
		rx_tally_close(&t, o->count);
	}
	printf("nettest: idle_reads=%lu\n", nic->idle_reads);
	printf("RESULT role=rx frames=%lu bytes=%lu errors=%lu lost=%lu cycles=%lu", t.frames, t.bytes,
	       t.errors, t.lost, t.last - t.start);
	if (o->restarts)
		printf(" restarts=%lu", t.restarted);
	printf("\n");
	return !timed_out && !t.errors && !t.lost ? 0 : 1;
}

/*
 * Both at once over one link: once the peer is heard from (probes, see
 * txrx_wait_peer), sends count= frames to dst= (paced by gap_ns= like tx,
 * in bursts of at most batch=) while receiving and checking the count=
 * frames the peer sends (each spending delay_ns=, like rx). Neither
 * direction waits for the other: a full TX ring just means "receive for a
 * while", so two txrx peers cannot deadlock on each other's backpressure.
 */
/*
 * Until the peer is heard from, sends a probe frame every PROBE_MS: over a
 * lossy link (udp) whatever is sent before the peer's NIC is up is lost.
 * Test frames that arrive meanwhile are accounted, not dropped. Waits up
 * to start_timeout_ms= (the peer may still be booting), as rx does.
 */
#define PROBE_MS 50
static bool txrx_wait_peer(struct nic *nic, const struct options *o, struct rx_tally *t)
{
	uint64_t deadline = deadline_ms(o->start_timeout_ms), next_probe = rdtsc();
	uint16_t len;
	uint32_t seq;

	for (;;) {
		if (deadline_passed(next_probe)) {
			uint8_t *buf = nic_tx_slot(nic);

			nic_tx_pending(nic);
			if (buf) {
				test_frame_build(buf, o->dst, nic->mac, SEQ_PROBE, o->size);
				nic_tx_commit(nic, o->size);
				nic_tx_kick(nic);
			}
			next_probe = deadline_ms(PROBE_MS);
		}
		const uint8_t *f = nic_rx_peek(nic, &len);
		if (!f) {
			if (deadline_passed(deadline))
				return false;
			continue;
		}
		bool heard = test_frame_check(f, len, &seq) == FRAME_OK;
		if (heard && seq != SEQ_PROBE)
			rx_tally_frame(t, f, len);
		nic_rx_done(nic);
		if (heard)
			return true;
	}
}

int role_txrx(struct nic *nic, const struct options *o)
{
	struct rx_tally t = { 0 };
	uint64_t sent = 0, start = rdtsc(), deadline = deadline_ms(o->timeout_ms);
	struct pacer pace;
	bool timed_out = false;

	if (!o->have_dst || !o->count) {
		printf("nettest: role=txrx needs count= and dst=\n");
		return 2;
	}
	if (!txrx_wait_peer(nic, o, &t)) {
		printf("nettest: txrx: the peer never answered\n");
		printf("RESULT role=txrx tx_frames=0 frames=0 bytes=0 errors=0 lost=%lu cycles=0\n", o->count);
		return 1;
	}
	start = rdtsc();
	pace = pacer_start(o->gap_ns);
	deadline = deadline_ms(o->timeout_ms);
	while (sent < o->count || t.frames + t.lost < o->count || nic_tx_pending(nic)) {
		bool progress = false;
		unsigned queued = 0;
		uint8_t *buf;

		nic_tx_pending(nic); /* reaps completions: tx_slot() does not */
		while (queued < o->batch && sent < o->count &&
		       pacer_allows(&pace, sent, o->batch) &&
		       (buf = nic_tx_slot(nic)) != NULL) {
			test_frame_build(buf, o->dst, nic->mac, (uint32_t)sent, o->size);
			nic_tx_commit(nic, o->size);
			queued++;
			sent++;
		}
		if (queued) {
			nic_tx_kick(nic);
			progress = true;
		}
		for (unsigned i = 0; i < o->batch; i++) {
			uint16_t len;
			const uint8_t *f = nic_rx_peek(nic, &len);

			if (!f)
				break;
			if (rx_tally_frame(&t, f, len) && o->delay_ns)
				spin_ns(o->delay_ns);
			nic_rx_done(nic);
			progress = true;
		}
		if (progress) {
			deadline = deadline_ms(o->timeout_ms);
		} else if (deadline_passed(deadline)) {
			timed_out = true;
			break;
		}
	}
	if (timed_out) {
		printf("nettest: txrx timeout after %lu ms without progress (sent %lu, tx pending %u)\n",
		       o->timeout_ms, sent, nic_tx_pending(nic));
		nic_dump(nic);
		rx_tally_close(&t, o->count);
	}
	uint64_t cycles = rdtsc() - start;

	printf("RESULT role=txrx tx_frames=%lu frames=%lu bytes=%lu errors=%lu lost=%lu cycles=%lu\n",
	       sent, t.frames, t.bytes, t.errors, t.lost, cycles);
	return !timed_out && sent == o->count && !t.errors && !t.lost ? 0 : 1;
}
