#!/bin/bash
# labels: integration vhost-user dpdk kvm
# xover as a vhost-user front-end: two xover VMs whose virtio-net queues
# DPDK's testpmd serves (its vhost PMD, one port each, io forwarding
# between the ports, no hugepages, no PCI). nettest from one VM to the
# other, every frame that arrives in order and intact; then the same with xover
# listening (backend=vhost-user:PATH,server) and testpmd connecting
# (client=1). Needs KVM and dpdk-testpmd (Debian package dpdk-dev).
# testpmd is a switch, not a lossless link: its vhost PMD drops what a
# guest's RX ring cannot take at that moment, so the sender is paced and
# the test allows a little loss (MAX_LOSS_PCT); xover's own links lose
# nothing (the crossover tests).
# Environment: COUNT (5000), GAP_NS (200000), MAX_LOSS_PCT (10: testpmd's forwarding core
# busy-polls one of two cores; under load its ports drop whole bursts).
. "$(dirname "$0")/lib.sh"
need_xover
TESTPMD=${TESTPMD:-dpdk-testpmd}
command -v "$TESTPMD" >/dev/null || fail "no $TESTPMD (Debian package dpdk-dev; scripts/install-deps.sh)"
count=${COUNT:-5000}
gap=${GAP_NS:-200000}
max_loss_pct=${MAX_LOSS_PCT:-10}
tsc=$(host_tsc_khz)
mac_a=52:54:00:7e:00:01
mac_b=52:54:00:7e:00:02
# testpmd busy-polls a core: it must not outlive the test (killing the
# subshell that started it would leave it to its timeout).
at_exit "pkill -f -- '--file-prefix xover-$$-'"

# testpmd NAME VDEV-OPTIONS: testpmd with ports 0 and 1 on $tmp/NAME0.sock
# and $tmp/NAME1.sock, forwarding between them; its stdin stays open, its
# output line-buffered (wait_testpmd reads it as it goes).
testpmd() {
	local name=$1 opts=$2
	mkfifo "$tmp/$name.in"
	( exec 3<>"$tmp/$name.in"; timeout -k 5 300 stdbuf -oL "$TESTPMD" -l 0-1 --no-pci --no-huge -m 1024 \
		--file-prefix "xover-$$-$name" \
		--vdev "net_vhost0,iface=$tmp/${name}0.sock,queues=1$opts" \
		--vdev "net_vhost1,iface=$tmp/${name}1.sock,queues=1$opts" \
		-- --forward-mode=io --auto-start --nb-cores=1 --total-num-mbufs=16384 <&3 >"$tmp/$name.out" 2>&1 ) &
	lib_pids+=($!)
}

# pair NAME BACKEND0 BACKEND1 TESTPMD: receiver on BACKEND1, sender on
# BACKEND0, paced frames through testpmd TESTPMD.
pair() {
	local name=$1 t0
	t0=$(now)
	# It waits for the first frame as long as the sender may take to boot
	# after testpmd has its rings (nettest's default, 10 s, is shorter than
	# that where the host is emulated: testpmd then "lost" every frame).
	xover_vm "$name-rx" "role=rx count=$count tsc_khz=$tsc start_timeout_ms=$((30000 * EMULATION_SCALE))" \
		"virtio-net,mac=$mac_b,backend=$3"
	wait_output "$name-rx" "link=up" 60 || fail "$name: the receiver never came up"
	# testpmd forwards to that port once the device's rings are live (a
	# fixed sleep was too short where the host is emulated).
	local rx_sock=${3#vhost-user:}
	rx_sock=$(basename "${rx_sock%,server}")
	wait_output "$4" "${rx_sock}\) virtio is now ready for processing" $((30 * EMULATION_SCALE)) ||
		fail "$name: testpmd never saw the receiver's rings live"
	xover_vm "$name-tx" "role=tx count=$count size=256 dst=$mac_b gap_ns=$gap tsc_khz=$tsc" \
		"virtio-net,mac=$mac_a,backend=$2"
	expect "$name-tx" frames="$count"
	local rc lost
	rc=$(wait_vm "$name-rx")
	lost=$(field "$name-rx" lost)
	[ -n "$lost" ] && [ "$(field "$name-rx" errors)" = 0 ] || fail "$name: receiver status $rc, errors"
	[ $((lost * 100)) -le $((count * max_loss_pct)) ] || testpmd_lost "$4" "$name: testpmd lost $lost of $count"
	echo "ok $name: $count frames through testpmd, $lost lost, none damaged or out of order, $(elapsed "$t0") s"
}

# testpmd_lost NAME MESSAGE: fails with what testpmd NAME saw: every vhost
# event it logged (a VM that exits is a "peer closed"), and its forward
# statistics per port (a line on its stdin ends it, and it prints them):
# did it take the sender's frames, and did its TX to the receiver's port
# drop them?
testpmd_lost() {
	echo "--- $1: vhost events"
	grep -a 'ready for processing\|peer closed\|new connection\|queue enable\|Port [0-9]' "$tmp/$1.out"
	echo >"$tmp/$1.in"
	wait_output "$1" "^Bye" 10 || true
	FAIL_TAIL=${FAIL_TAIL:-45} fail "$2"
}

# wait_testpmd NAME: until its ports are configured and it forwards (its
# start-up is slow where the host is emulated).
wait_testpmd() {
	wait_output "$1" "^Press enter to exit" $((60 * EMULATION_SCALE)) || fail "testpmd $1 never started forwarding"
}
# stop_testpmd NAME: one testpmd at a time; each busy-polls a core.
stop_testpmd() { pkill -f -- "--file-prefix xover-$$-$1 " && sleep 1; }

# testpmd listens; xover connects.
testpmd tp ""
wait_testpmd tp
[ -S "$tmp/tp0.sock" ] && [ -S "$tmp/tp1.sock" ] || fail "testpmd never listened"
pair client "vhost-user:$tmp/tp0.sock" "vhost-user:$tmp/tp1.sock" tp
stop_testpmd tp

# xover listens; testpmd connects (client=1; its vhost PMD keeps retrying,
# so each new VM gets connected).
testpmd tpc ",client=1"
wait_testpmd tpc
pair server "vhost-user:$tmp/tpc0.sock,server" "vhost-user:$tmp/tpc1.sock,server" tpc
echo PASS
