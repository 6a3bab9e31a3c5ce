/*
 * Throughput roles.
 *   role=tx count=N size=S dst=MAC [batch=B] [gap_ns=G]: N frames, one
 *   doorbell per B; with G, no faster than one frame per G ns on average
 *   (a peer without flow control, like QEMU's -netdev dgram, drops the
 *   excess).
 *   role=rx count=N: counts frames until N are accounted for (received or
 *   known lost from gaps in the sequence) and checks every one.
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

int role_tx(struct nic *nic, const struct options *o)
{
	uint64_t sent = 0, start = rdtsc();

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
		if (o->gap_ns) {
			uint64_t due = start + sent * o->gap_ns * (tsc_hz() / 1000000) / 1000;

			while ((int64_t)(rdtsc() - due) < 0)
				nic_tx_pending(nic);
		}
	}
	bool drained = tx_drain(nic, o->timeout_ms);
	uint64_t cycles = rdtsc() - start;

	printf("RESULT role=tx frames=%lu bytes=%lu cycles=%lu\n", sent, sent * o->size, cycles);
	return sent == o->count && drained ? 0 : 1;
}

int role_rx(struct nic *nic, const struct options *o)
{
	uint64_t frames = 0, bytes = 0, errors = 0, lost = 0, start = 0, last = 0;
	uint32_t expected = 0;
	uint64_t deadline = deadline_ms(o->timeout_ms);
	bool timed_out = false;

	if (!o->count) {
		printf("nettest: role=rx needs count=\n");
		return 2;
	}
	while (frames + lost < o->count) {
		uint16_t len;
		uint32_t seq;
		const uint8_t *f = nic_rx_peek(nic, &len);

		if (!f) {
			if (deadline_passed(deadline)) {
				timed_out = true;
				break;
			}
			continue;
		}
		enum frame_status st = test_frame_check(f, len, &seq);
		if (st != FRAME_OTHER) {
			last = rdtsc();
			if (!frames && !lost)
				start = last;
			frames++;
			bytes += len;
			if (st == FRAME_CORRUPT) {
				errors++;
			} else if (seq >= expected) {
				lost += seq - expected;
				expected = seq + 1;
			} else {
				errors++; /* duplicated or reordered */
			}
			deadline = deadline_ms(o->timeout_ms);
		}
		nic_rx_done(nic);
	}
	if (timed_out) {
		printf("nettest: rx timeout after %lu ms without a frame\n", o->timeout_ms);
		nic_dump(nic);
		/* Frames never seen at the end of the run are lost too. */
		lost = o->count - frames > lost ? o->count - frames : lost;
	}
	printf("RESULT role=rx frames=%lu bytes=%lu errors=%lu lost=%lu cycles=%lu\n", frames, bytes,
	       errors, lost, last - start);
	return !timed_out && !errors && !lost ? 0 : 1;
}
