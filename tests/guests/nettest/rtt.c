/*
 * Round-trip roles.
 *   role=echo [count=N] [batch=B]: sends every test frame back to its source.
 *   Replies go out in one doorbell per burst of received frames, at most B
 *   frames per doorbell.
 *   role=ping count=N size=S dst=MAC: N round trips, one frame in flight;
 *   warm-up probes (seq SEQ_PROBE) first, so it may start before the echo
 *   peer is listening.
 */
#include "frame.h"
#include "guest.h"
#include "nettest.h"

#define PROBE_INTERVAL_MS 100

int role_echo(struct nic *nic, const struct options *o)
{
	uint64_t frames = 0, deadline = deadline_ms(o->timeout_ms);
	unsigned queued = 0;
	bool timed_out = false;

	while (!o->count || frames < o->count) {
		uint16_t len;
		uint32_t seq;
		const uint8_t *f = nic_rx_peek(nic, &len);

		if (!f) {
			if (queued) { /* the burst is over: one doorbell for all of it */
				nic_tx_kick(nic);
				queued = 0;
			}
			if (deadline_passed(deadline)) {
				timed_out = true;
				break;
			}
			continue;
		}
		if (test_frame_check(f, len, &seq) != FRAME_OTHER) {
			uint8_t *out = nic_tx_slot(nic);

			if (!out && queued) { /* a full ring of unsent replies would never drain */
				nic_tx_kick(nic);
				queued = 0;
			}
			if (!out)
				out = tx_slot_wait(nic, o->timeout_ms);

			if (!out) {
				printf("nettest: echo tx ring stuck\n");
				return 1;
			}
			memcpy(out, f, len);
			eth_reply(out, nic->mac);
			nic_tx_commit(nic, len);
			if (++queued >= o->batch) {
				nic_tx_kick(nic);
				queued = 0;
			}
			if (seq != SEQ_PROBE)
				frames++;
			deadline = deadline_ms(o->timeout_ms);
		}
		nic_rx_done(nic);
	}
	if (queued)
		nic_tx_kick(nic);
	tx_drain(nic, o->timeout_ms);
	printf("RESULT role=echo frames=%lu\n", frames);
	if (timed_out && o->count)
		return 1;
	return frames ? 0 : 1; /* without count= an idle timeout is the normal end */
}

/* Waits for the test frame with sequence number seq; false on timeout. */
static bool wait_reply(struct nic *nic, uint32_t seq, uint64_t timeout_ms)
{
	uint64_t deadline = deadline_ms(timeout_ms);

	for (;;) {
		uint16_t len;
		uint32_t got;
		const uint8_t *f = nic_rx_peek(nic, &len);

		if (!f) {
			if (deadline_passed(deadline))
				return false;
			continue;
		}
		bool match = test_frame_check(f, len, &got) == FRAME_OK && got == seq;
		nic_rx_done(nic);
		if (match)
			return true;
	}
}

static bool send_one(struct nic *nic, const struct options *o, uint32_t seq)
{
	uint8_t *buf = tx_slot_wait(nic, o->timeout_ms);

	if (!buf)
		return false;
	test_frame_build(buf, o->dst, nic->mac, seq, o->size);
	nic_tx_commit(nic, o->size);
	nic_tx_kick(nic);
	return true;
}

/* Shell sort: no recursion, fine for the few thousand samples we keep. */
static void sort_u64(uint64_t *a, uint64_t n)
{
	for (uint64_t gap = n / 2; gap; gap /= 2)
		for (uint64_t i = gap; i < n; i++)
			for (uint64_t j = i; j >= gap && a[j - gap] > a[j]; j -= gap) {
				uint64_t t = a[j];
				a[j] = a[j - gap];
				a[j - gap] = t;
			}
}

/*
 * role=exitcost count=N: the time of one TX doorbell with nothing queued
 * (the register write every frame of a round trip pays: a VM exit, to
 * userspace unless the NIC's notifies end in the kernel), N times; the
 * median is the exit cost a round trip is compared with (bench.sh,
 * crossover section).
 */
int role_exitcost(struct nic *nic, const struct options *o)
{
	uint64_t n = o->count ? o->count : 1000;
	uint64_t *t = dma_alloc(n * sizeof(uint64_t), 8);

	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = rdtsc();

		nic_tx_kick(nic);
		t[i] = rdtsc() - t0;
	}
	sort_u64(t, n);
	printf("RESULT role=exitcost reads=%lu median_cycles=%lu p99_cycles=%lu\n", n, t[n / 2], t[n * 99 / 100]);
	return 0;
}

int role_ping(struct nic *nic, const struct options *o)
{
	if (!o->have_dst || !o->count) {
		printf("nettest: role=ping needs count= and dst=\n");
		return 2;
	}

	/* Warm-up: probe until the peer answers (it may still be booting). */
	uint64_t deadline = deadline_ms(o->timeout_ms);
	for (;;) {
		if (!send_one(nic, o, SEQ_PROBE))
			return 1;
		if (wait_reply(nic, SEQ_PROBE, PROBE_INTERVAL_MS))
			break;
		if (deadline_passed(deadline)) {
			printf("nettest: ping: no echo peer answered\n");
			printf("RESULT role=ping frames=0 median_cycles=0 p99_cycles=0\n");
			return 1;
		}
	}

	uint64_t *rtt = dma_alloc(o->count * sizeof(uint64_t), 8), n;
	for (n = 0; n < o->count; n++) {
		uint64_t t0 = rdtsc();

		if (!send_one(nic, o, (uint32_t)n) || !wait_reply(nic, (uint32_t)n, o->timeout_ms)) {
			printf("nettest: ping: no reply to frame %lu\n", n);
			break;
		}
		rtt[n] = rdtsc() - t0;
	}
	sort_u64(rtt, n);
	uint64_t median = n ? rtt[n / 2] : 0, p99 = n ? rtt[n * 99 / 100] : 0;
	printf("RESULT role=ping frames=%lu median_cycles=%lu p99_cycles=%lu\n", n, median, p99);
	return n == o->count ? 0 : 1;
}
