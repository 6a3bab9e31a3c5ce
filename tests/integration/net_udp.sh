#!/bin/bash
# labels: integration network kvm
# Two xover VMs joined by a UDP "cable" (udp:LPORT@127.0.0.1:RPORT, QEMU's
# -netdev dgram framing: one datagram per frame). UDP has no flow control,
# so both guests pace their senders (gap_ns=) to a rate the receivers keep
# up with, send COUNT frames each way at once (role=txrx, which probes
# until the peer is up) and must lose none. Then one-way tx -> rx, whose
# receiver is started first and waited for.
# Environment: COUNT (20000; a quarter where guests are emulated), GAP_NS (100000).
. "$(dirname "$0")/lib.sh"
need_xover

count=${COUNT:-$(emulated_count 20000)}
gap_ns=${GAP_NS:-$((100000 * $EMULATION_SCALE))}  # slower where guests are emulated (scripts/kvm-host.sh)
tsc=$(host_tsc_khz)
mac_a=52:54:00:5d:00:01
mac_b=52:54:00:5d:00:02

# both_ways MODEL_A MODEL_B SIZE
both_ways() {
	local a=$1 b=$2 size=$3 port t0 name=txrx-$1-$2
	port=$(free_port 2) || fail "no free port"
	t0=$(now)
	xover_vm "$name-A" "role=txrx count=$count size=$size gap_ns=$gap_ns dst=$mac_b tsc_khz=$tsc" \
		"$(nic_model "$a"),mac=$mac_a,backend=udp:127.0.0.1:$port@127.0.0.1:$((port + 1))"
	xover_vm "$name-B" "role=txrx count=$count size=$size gap_ns=$gap_ns dst=$mac_a tsc_khz=$tsc" \
		"$(nic_model "$b"),mac=$mac_b,backend=udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
	expect "$name-A" tx_frames="$count" frames="$count" lost=0 errors=0
	expect "$name-B" tx_frames="$count" frames="$count" lost=0 errors=0
	echo "ok udp $a<->$b size=$size: $count frames each way at one per $gap_ns ns, $(elapsed "$t0") s"
}

# one_way TX_MODEL RX_MODEL SIZE
one_way() {
	local a=$1 b=$2 size=$3 port t0 name=tx-$1-$2
	port=$(free_port 2) || fail "no free port"
	t0=$(now)
	xover_vm "$name-rx" "role=rx count=$count tsc_khz=$tsc" \
		"$(nic_model "$b"),mac=$mac_b,backend=udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
	wait_output "$name-rx" "link=up" 60 || fail "$name: receiver never came up"
	xover_vm "$name-tx" "role=tx count=$count size=$size gap_ns=$gap_ns dst=$mac_b tsc_khz=$tsc" \
		"$(nic_model "$a"),mac=$mac_a,backend=udp:127.0.0.1:$port@127.0.0.1:$((port + 1))"
	expect "$name-tx" frames="$count"
	expect "$name-rx" frames="$count" lost=0 errors=0
	echo "ok udp $a->$b size=$size: $count frames, $(elapsed "$t0") s"
}

both_ways e1000 e1000 64
both_ways virtio virtio 1514
both_ways e1000 virtio 200
one_way virtio e1000 1514
one_way e1000 virtio 64
echo PASS
