#!/bin/bash
# labels: integration vhost-user qemu
# QEMU VMs join the crossover through xover's vhost-user back-end: two
# QEMU VMs running nettest, each virtio-net-pci served by `xover
# vhost-user` (QEMU's -netdev vhost-user, its RAM a shared memfd), linked
# by the broker like two xover VMs. Lossless in both directions: a fast
# receiver, a slow one (the TX handoff), and both ways at once; the
# back-ends' counters show the frames crossed over. KVM is not needed.
# Environment: COUNT (100000).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"

count=${COUNT:-100000}
mac_a=52:54:00:76:00:01
mac_b=52:54:00:76:00:02
vu_broker
vu_backend qa "virtio-net,mac=$mac_a,crossover=qb"
vu_backend qb "virtio-net,mac=$mac_b,crossover=qa"
stops=0

# run NAME RX-SOCKET RX-MAC TX-SOCKET TX-MAC RX-ARGS TX-ARGS: one
# receiver, then one sender to it; both must report every frame.
run() {
	local name=$1 t0
	t0=$(now)
	vu_qemu "$name-rx" "$tmp/$2.sock" "$3" "nic=virtio role=rx tsc_khz=$tsc $6"
	wait_output "$name-rx" "link=up" 60 || fail "$name: the receiver never came up"
	vu_qemu "$name-tx" "$tmp/$4.sock" "$5" "nic=virtio role=tx dst=$3 tsc_khz=$tsc $7"
	expect "$name-tx" frames="$8"
	expect "$name-rx" frames="$8" errors=0 lost=0
	echo "ok $name: $8 frames, $(elapsed "$t0") s"
}

run a2b qb $mac_b qa $mac_a "count=$count" "count=$count size=64" "$count"
stops=$((stops + 1)); wait_stops qa $stops; wait_stops qb $stops
[ "$(last_stat qa xover_tx_frames)" = "$count" ] || fail "qa: xover_tx_frames=$(last_stat qa xover_tx_frames), expected $count"
[ "$(last_stat qb xover_rx_frames)" = "$count" ] || fail "qb: xover_rx_frames=$(last_stat qb xover_rx_frames), expected $count"
[ "$(last_stat qa tx_dropped_backend)" = 0 ] || fail "qa dropped frames to its backend"

# A receiver slower than its sender (a 20 us pause a frame): the sender's
# frames wait in its TX handoff, its guest's TX ring is the back-pressure.
slow=$((count / 5))
run b2a-slow qa $mac_a qb $mac_b "count=$slow delay_ns=20000" "count=$slow size=1400" "$slow"
stops=$((stops + 1)); wait_stops qa $stops; wait_stops qb $stops
[ "$(last_stat qa xover_rx_frames)" = "$slow" ] || fail "qa: xover_rx_frames=$(last_stat qa xover_rx_frames), expected $slow"
parked=$(last_stat qb xover_handoff_parked)
[ "${parked:-0}" -gt 0 ] || fail "qb: the slow receiver never made the sender park a frame"
echo "ok the slow receiver: qb parked $parked frames, moved by the receiver's side: $(last_stat qb xover_handoff_moved_by_peer)"

# Both ways at once.
both=$((count / 2))
vu_qemu both-a "$tmp/qa.sock" $mac_a "nic=virtio role=txrx count=$both dst=$mac_b size=256 tsc_khz=$tsc"
vu_qemu both-b "$tmp/qb.sock" $mac_b "nic=virtio role=txrx count=$both dst=$mac_a size=256 tsc_khz=$tsc"
expect both-a tx_frames="$both" frames="$both" errors=0 lost=0
expect both-b tx_frames="$both" frames="$both" errors=0 lost=0
echo "ok both ways at once: $both frames each way"
grep -q "link .* up: q[ab]#0 <-> q[ab]#0 (copy, static)" "$tmp/broker.out" || fail "the broker never linked qa and qb"
echo PASS
