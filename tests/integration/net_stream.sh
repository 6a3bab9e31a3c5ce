#!/bin/bash
# labels: integration network kvm
# Two xover VMs joined by a stream socket (stream-listen / stream-connect,
# QEMU's -netdev stream framing), both sending COUNT frames to the other at
# once (nettest role=txrx). A's guest spends DELAY_NS on every frame it
# receives, so it is slower than B's sender: its RX ring fills, and the
# stream backend must hold frames back (TCP backpressure) instead of
# dropping them. Every frame must arrive, in order and intact, both ways;
# for e1000, virtio-net and a mixed pair, with small, full-size and odd
# frame sizes.
# Environment: COUNT (100000; a quarter where guests are emulated), DELAY_NS (20000).
. "$(dirname "$0")/lib.sh"
need_xover

count=${COUNT:-$(emulated_count 100000)}
delay_ns=${DELAY_NS:-20000}
tsc=$(host_tsc_khz)
mac_a=52:54:00:5e:00:01
mac_b=52:54:00:5e:00:02

# pair MODEL_A MODEL_B SIZE
pair() {
	local a=$1 b=$2 size=$3 port t0 name=$1-$2-$3
	port=$(free_port) || fail "no free port"
	t0=$(now)
	xover_vm "$name-A" "role=txrx count=$count size=$size dst=$mac_b delay_ns=$delay_ns tsc_khz=$tsc" \
		"$(nic_model "$a"),mac=$mac_a,backend=stream-listen:127.0.0.1:$port"
	# The listener is up once its socket is bound; connect retries anyway.
	xover_vm "$name-B" "role=txrx count=$count size=$size dst=$mac_a tsc_khz=$tsc" \
		"$(nic_model "$b"),mac=$mac_b,backend=stream-connect:127.0.0.1:$port"
	expect "$name-B" tx_frames="$count" frames="$count" lost=0 errors=0
	expect "$name-A" tx_frames="$count" frames="$count" lost=0 errors=0
	# A's ring must really have run full: otherwise this tested no backpressure.
	local full
	if [ "$a" = e1000 ]; then full=$(stat "$name-A" rx_dropped_no_buffer); else full=$(stat "$name-A" rx_no_buffer); fi
	[ "${full:-0}" -gt 0 ] || fail "$name: A's RX ring never ran full (no backpressure exercised)"
	echo "ok $a<->$b size=$size: $count frames each way, A's ring full $full times, $(elapsed "$t0") s"
}

pair e1000 e1000 64
pair virtio virtio 1514
pair e1000 virtio 601
pair virtio e1000 1514
echo PASS
