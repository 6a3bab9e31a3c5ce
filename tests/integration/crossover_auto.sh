#!/bin/bash
# labels: integration crossover kvm
# Auto wiring (crossover = "auto"): two VMs whose NICs share a lossless
# slow path (stream-listen <-> stream-connect). The first frames go over
# the backend; the sender reports the unknown destination (FrameSeen), the
# broker's detector links the two NICs, and the rest go over the crossover.
# Frames the backend still carried when the link came up must not be
# overtaken: the receiver counts every frame, in sequence, none lost.
# Slow paths: a stream socket pair (e1000 -> e1000, virtio-net -> e1000),
# and the broker's own switch (backend = broker), where the broker's
# detector sees the unicast itself (virtio-net -> virtio-net, e1000 -> virtio-net).
source "$(dirname "$0")/crossover_common.inc"
N=${XOVER_AUTO_FRAMES:-$(emulated_count 20000)}
port=$((20000 + RANDOM % 20000))
run_auto() {  # TXMODEL RXMODEL TAG [broker]
	local rx=arx$3 tx=atx$3 rxmac=52:54:00:c6:$3:01 txmac=52:54:00:c6:$3:02 p=$((port + 10#$3))
	local rxb="backend=stream-listen:127.0.0.1:$p" txb="backend=stream-connect:127.0.0.1:$p"
	[ "${4:-}" = broker ] && rxb=backend=broker txb=backend=broker
	NICX=$rxb vm $rx "$2" $rxmac auto "role=rx count=$N timeout_ms=20000"
	sleep 0.3
	NICX=$txb vm $tx "$1" $txmac auto \
		"role=tx count=$N size=64 dst=$rxmac timeout_ms=20000"
	local json="" i
	for i in $(seq 600); do
		json=$("$X" status --broker "$BROKER" --json 2>/dev/null)
		echo "$json" | grep -q '"wiring":"auto"' && break
		[ -s "$tmp/$tx.rc" ] && break
		sleep 0.05
	done
	local rrc=$(wait_vm $rx) trc=$(wait_vm $tx)
	[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "$1 -> $2: exit status rx=$rrc tx=$trc"
	# A fast pair can finish between two status polls: then the broker's
	# log line for the link (same fields) stands in for the status.
	echo "$json" | grep -q "\"a\":{\"vm\":\"$tx\",\"nic\":0},\"b\":{\"vm\":\"$rx\",\"nic\":0},\"mode\":\"copy\",\"wiring\":\"auto\"" ||
		{ ! echo "$json" | grep -q '"wiring"' && grep -q "link [0-9]* up: $tx#0 <-> $rx#0 (copy, auto)" "$tmp/broker.log"; } ||
		fail "$1 -> $2: no auto link in xover status: $json"
	result $rx | grep -q "frames=$N .*errors=0 lost=0" || fail "$1 -> $2: $(result $rx)"
	local slow=$(stat $tx xover_tx_backend_frames) fast=$(stat $tx xover_tx_frames)
	[ "$slow" -gt 0 ] || fail "$1 -> $2: no frame took the slow path"
	[ "$fast" -gt 0 ] || fail "$1 -> $2: no frame took the crossover"
	[ $((slow + fast)) = $N ] || fail "$1 -> $2: slow $slow + fast $fast != $N"
	[ "$(stat $tx xover_frames_seen_reported)" -ge 1 ] || fail "$1 -> $2: no FrameSeen reported"
	echo "ok: $1 -> $2 (${4:-stream}): $slow frames over the backend, then $fast over the auto link;" \
		"rx: $(result $rx | grep -o 'frames=[0-9]* .*lost=[0-9]*');" \
		"drain waits=$(stat $tx xover_drain_waits) timeouts=$(stat $tx xover_drain_timeouts)"
	[ "$(stat $tx xover_drain_timeouts)" = 0 ] || fail "$1 -> $2: the drain timed out"
}
run_auto e1000 e1000 11
run_auto virtio e1000 12
run_auto virtio virtio 13 broker
run_auto e1000 virtio 14 broker
echo PASS
