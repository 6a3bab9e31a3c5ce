#!/bin/bash
# labels: integration crossover kvm
# A receiver slower than its sender (it returns buffers 32 at a time, reads
# a register after each return and spends 2 us per frame), copy mode, every
# model pair: lossless, and the frames that found the receiver's ring full
# were parked and moved by the receiver's own process (TX handoff), so the
# sender's process was not woken per batch: its doorbell woke it at most
# once per 1000 frames (plus a few at link-up and the end), and the
# receiver moved parked frames (each time the receiver found the sender
# mid-batch it rings the sender's doorbell instead); its rx_frames count
# them all, the ones it moved itself too.
source "$(dirname "$0")/crossover_common.inc"
N=$(emulated_count 20000)
# (Where the host is emulated, the sender's exits cost far more than the
# receiver's work at CPL3: 2 us a frame let a virtio receiver keep up
# there, and nothing was left for it to move. Its work scales with it.)
RX="rx_batch=32 rx_read_reg=1 rx_work_ns=$((2000 * EMULATION_SCALE))"
run_pair() {  # RXMODEL TXMODEL TAG
	local rx=rx$3 tx=tx$3 rxmac=52:54:00:c9:$3:01 txmac=52:54:00:c9:$3:02
	vm $rx "$1" $rxmac $tx "role=rx count=$N $RX timeout_ms=30000"; sleep 0.3
	vm $tx "$2" $txmac $rx "role=tx count=$N size=64 dst=$rxmac timeout_ms=30000"
	local rrc=$(wait_vm $rx) trc=$(wait_vm $tx)
	[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "$2 -> $1: exit status rx=$rrc tx=$trc"
	result $rx | grep -q "frames=$N .*errors=0 lost=0" || fail "$2 -> $1: $(result $rx)"
	local parked=$(stat $tx xover_handoff_parked) by_peer=$(stat $tx xover_handoff_moved_by_peer)
	local wakeups=$(stat $tx xover_doorbell_wakeups) moved=$(stat $rx xover_handoff_moved_for_peers)
	[ "${parked:-0}" -gt 0 ] || fail "$2 -> $1: nothing was parked (the receiver kept up?)"
	[ "${by_peer:-0}" -gt 0 ] && [ "$by_peer" = "$moved" ] ||
		fail "$2 -> $1: the receiver moved $moved parked frames, the sender counts $by_peer"
	# Whoever moved them, the receiver counts every frame it received.
	local got="$(stat $rx rx_frames) $(stat $rx xover_rx_frames)"
	[ "$got" = "$N $N" ] || fail "$2 -> $1: the receiver counts rx_frames xover_rx_frames = $got, expected $N $N"
	# At most one per 1000 frames in steady state, plus a few for the
	# link coming up and the end of the run, plus one for each time the
	# receiver found the sender mid-batch (its locks busy: by design it
	# rings the sender's doorbell then; a slow build, ASan on a loaded
	# host, has many more of those). Never one per batch.
	local busy=$(stat $rx xover_handoff_lock_busy) batches=$(stat $tx xover_batches)
	[ "${wakeups:-0}" -le $((N / 1000 + 10 + ${busy:-0})) ] && [ "${wakeups:-0}" -lt $((${batches:-0} / 4)) ] ||
		fail "$2 -> $1: the sender's doorbell woke it $wakeups times for $N frames ($batches batches, receiver found its locks busy $busy times)"
	echo "ok: $2 -> $1: $N frames lossless, $parked parked, $by_peer moved by the receiver, sender woken $wakeups times (locks busy $busy, $batches batches)"
}
run_pair e1000 e1000 31
run_pair virtio virtio 32
run_pair virtio e1000 33
run_pair e1000 virtio 34
echo PASS
