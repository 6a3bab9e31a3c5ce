#!/bin/bash
# labels: integration network qemu kvm
# xover's NICs against QEMU's: an xover VM and a QEMU VM running nettest,
# xover tx -> QEMU rx and QEMU tx -> xover rx, joined by
#   udp:    xover udp:LPORT@127.0.0.1:RPORT  <->  QEMU -netdev dgram
#   stream: xover stream-listen/-connect     <->  QEMU -netdev socket,connect=/listen=
# for e1000 and virtio-net (QEMU: virtio-net-pci,disable-legacy=on). Same
# model on both ends, so a mistake in xover's model shows up as a
# disagreement with QEMU's. The dgram runs are paced (gap_ns=): QEMU drops
# what it cannot take.
# Environment: COUNT (5000 over udp, 4x that over stream), GAP_NS (100000),
# SIZE (256), MAX_QEMU_LOSS_PCT (25: what a QEMU receiver may lose — QEMU 7.2's
# e1000 RX sometimes stalls for good on a loaded host, see below; xover
# receivers must lose nothing).
. "$(dirname "$0")/lib.sh"
need_xover
need_qemu

count=${COUNT:-5000}
size=${SIZE:-256}
max_qemu_loss_pct=${MAX_QEMU_LOSS_PCT:-25}
gap_ns=${GAP_NS:-$((100000 * $EMULATION_SCALE))}  # slower where guests are emulated (scripts/kvm-host.sh)
tsc=$(host_tsc_khz)
mac_x=52:54:00:5c:00:01
mac_q=52:54:00:5c:00:02

# One direction per run; the receiver starts first and is waited for.
# QEMU's e1000 RX stalls for good when frames arrive in the first moments
# after its guest enabled RX (seen with QEMU 7.2, never with a 1 s pause),
# so a QEMU receiver gets that pause.

# link_ends udp|stream LISTENER: sets the caller's netdev (QEMU's -netdev)
# and backend (xover's) for the two ends of one link on free local ports;
# over stream, LISTENER (qemu or xover) listens and the other connects.
link_ends() {
	local port
	port=$(free_port 2) || return 1
	if [ "$1" = udp ]; then
		netdev="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$port,remote.type=inet,remote.host=127.0.0.1,remote.port=$((port + 1))"
		backend="udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
	elif [ "$2" = qemu ]; then
		netdev="socket,id=n0,listen=127.0.0.1:$port"
		backend="stream-connect:127.0.0.1:$port"
	else
		netdev="socket,id=n0,connect=127.0.0.1:$port"
		backend="stream-listen:127.0.0.1:$port"
	fi
}

# x_to_q MODEL udp|stream: xover tx -> QEMU rx
x_to_q() {
	local model=$1 transport=$2 t0 name=$1-$2-x2q n=$count netdev backend gap="gap_ns=$gap_ns"
	t0=$(now)
	# Paced over stream too: QEMU's e1000 loses frames from an unpaced
	# sender even over a lossless stream (QEMU -> QEMU too: 5% at 20k
	# frames/s, 7.2).
	link_ends "$transport" qemu || fail "no free port"
	[ "$transport" = udp ] || n=$((count * 4))
	qemu_vm "$name-qemu" "nic=$model role=rx count=$n tsc_khz=$tsc" "$netdev" "$(qemu_device "$model" "$mac_q")"
	wait_output "$name-qemu" "link=up" 60 || fail "$name: QEMU guest never came up"
	sleep 1
	xover_vm "$name-xover" "role=tx count=$n size=$size dst=$mac_q $gap tsc_khz=$tsc" \
		"$(nic_model "$model"),mac=$mac_x,backend=$backend"
	expect "$name-xover" frames="$n"
	# QEMU's receiver exits 1 on any loss; its loss is QEMU's, not ours
	# (the same runs QEMU -> QEMU lose frames too), within reason.
	local rc lost
	rc=$(wait_vm "$name-qemu")
	lost=$(field "$name-qemu" lost)
	[ -n "$lost" ] && [ "$(field "$name-qemu" errors)" = 0 ] || fail "$name: QEMU rx status $rc, errors"
	[ $((lost * 100)) -le $((n * max_qemu_loss_pct)) ] || fail "$name: QEMU lost $lost of $n"
	echo "ok $model over $transport, xover -> QEMU: $n frames, QEMU lost $lost, $(elapsed "$t0") s"
}

# q_to_x MODEL udp|stream: QEMU tx -> xover rx
q_to_x() {
	local model=$1 transport=$2 t0 name=$1-$2-q2x n=$count netdev backend gap=
	t0=$(now)
	link_ends "$transport" xover || fail "no free port"
	if [ "$transport" = udp ]; then gap="gap_ns=$gap_ns"; else n=$((count * 4)); fi
	xover_vm "$name-xover" "role=rx count=$n tsc_khz=$tsc timeout_ms=60000" "$(nic_model "$model"),mac=$mac_x,backend=$backend"
	[ "$transport" = udp ] && { wait_output "$name-xover" "link=up" 60 || fail "$name: xover guest never came up"; }
	[ "$transport" = udp ] || sleep 0.5 # the listening socket is bound while the VM is set up
	qemu_vm "$name-qemu" "nic=$model role=tx count=$n size=$size dst=$mac_x $gap tsc_khz=$tsc" \
		"$netdev" "$(qemu_device "$model" "$mac_q")"
	expect "$name-qemu" frames="$n"
	expect "$name-xover" frames="$n" lost=0 errors=0
	echo "ok $model over $transport, QEMU -> xover: $n frames, $(elapsed "$t0") s"
}

for model in e1000 virtio; do
	for transport in udp stream; do
		x_to_q $model $transport
		q_to_x $model $transport
	done
done
echo PASS
