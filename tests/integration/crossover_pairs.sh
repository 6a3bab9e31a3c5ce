#!/bin/bash
# labels: integration crossover kvm
# Copy-mode crossover between two VMs for every model pair, started in
# both orders: 20000 64-byte frames tx -> rx, none lost, no bad frames;
# every frame went over the link (bytes_copied == bytes sent over it, and
# the receiver's rx_frames and xover_rx_frames count them), and the
# receiver was not woken per frame (its exits per frame ~ 0).
# Once more for virtio with ioeventfd=on (a crossover NIC's default is off).
source "$(dirname "$0")/crossover_common.inc"
N=$(emulated_count 20000)
run_pair() {  # RXMODEL TXMODEL ORDER TAG
	local rx=rx$4 tx=tx$4 rxmac=52:54:00:c1:$4:01 txmac=52:54:00:c1:$4:02
	if [ "$3" = rxfirst ]; then
		vm $rx "$1" $rxmac $tx "role=rx count=$N timeout_ms=20000"; sleep 0.3
		vm $tx "$2" $txmac $rx "role=tx count=$N size=64 dst=$rxmac timeout_ms=20000"
	else
		vm $tx "$2" $txmac $rx "role=tx count=$N size=64 dst=$rxmac timeout_ms=20000"; sleep 0.3
		vm $rx "$1" $rxmac $tx "role=rx count=$N timeout_ms=20000"
	fi
	local rrc=$(wait_vm $rx) trc=$(wait_vm $tx)
	[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "$2 -> $1 ($3): exit status rx=$rrc tx=$trc"
	result $rx | grep -q "frames=$N .*errors=0 lost=0" || fail "$2 -> $1 ($3): $(result $rx)"
	local sent=$(stat $tx xover_tx_bytes) copied=$(stat $tx xover_bytes_copied) frames=$(stat $tx xover_tx_frames)
	[ "$frames" = $N ] || fail "$2 -> $1 ($3): $frames frames over the link, expected $N"
	[ "$sent" = $((N * 64)) ] && [ "$copied" = "$sent" ] || fail "$2 -> $1: bytes_copied=$copied sent=$sent"
	# The receiver counts them too, written into its ring by the sender's process.
	local got="$(stat $rx rx_frames) $(stat $rx xover_rx_frames) $(stat $rx xover_rx_bytes)"
	[ "$got" = "$N $N $sent" ] ||
		fail "$2 -> $1 ($3): the receiver counts rx_frames xover_rx_frames xover_rx_bytes = $got, expected $N $N $sent"
	# The receiver is not woken per frame: its NIC's own register writes
	# (RDT writes, or RX notifies, once per batch of returned buffers) stay
	# far below one per frame. (Its total exits also count the link-up
	# wait, which depends on how long the sender takes to boot.)
	local rwrites
	if [ "$1" = e1000 ]; then rwrites=$(stat $rx mmio_writes); else rwrites=$(stat $rx notifies); fi
	[ "$rwrites" -lt $((N / 4)) ] || fail "$2 -> $1: receiver NIC had $rwrites register writes for $N frames"
	echo "ok: $2 -> $1 ($3): $N frames, bytes_copied=$copied, receiver NIC register writes=$rwrites, $(result $tx | grep -o 'cycles=[0-9]*')"
}
run_pair e1000 e1000 rxfirst 11
run_pair e1000 e1000 txfirst 12
run_pair virtio virtio rxfirst 13
run_pair virtio virtio txfirst 14
run_pair virtio e1000 rxfirst 15
run_pair e1000 virtio txfirst 16
# A crossover NIC's queue notifies stay MMIO exits that the sender's vCPU
# thread serves (QEMU's ioeventfd=off), so every notify shows up as a
# write on the NIC's MMIO bus; with ioeventfd=on the kernel absorbs them
# and the I/O thread serves them.
notify_bus_writes() { grep -ao 'nic0-virtio-net bus=mmio reads=[0-9]* writes=[0-9]*' "$tmp/$1.out" | sed 's/.*writes=//'; }
bus_writes=$(notify_bus_writes tx13)
[ "${bus_writes:-0}" -ge "$(stat tx13 notifies)" ] ||
	fail "crossover default: $bus_writes MMIO writes for $(stat tx13 notifies) notifies"
echo "ok: crossover default: $(stat tx13 notifies) notifies, all MMIO exits ($bus_writes bus writes)"
NICX=ioeventfd=on run_pair virtio virtio rxfirst 17
bus_writes=$(notify_bus_writes tx17)
[ "${bus_writes:-0}" -lt "$(stat tx17 notifies)" ] ||
	fail "ioeventfd=on: $bus_writes MMIO writes for $(stat tx17 notifies) notifies"
echo "ok: ioeventfd=on: $(stat tx17 notifies) notifies, $bus_writes bus writes"
echo PASS
