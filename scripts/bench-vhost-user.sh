#!/bin/bash
# QEMU VMs on the crossover, measured in one run on one host (only ratios
# mean anything across machines): nettest tx -> rx, 64-byte frames, the
# median of REPS runs, between
#   qemu-vhost   two QEMU VMs, each virtio-net-pci on an `xover vhost-user`
#                back-end, linked by the broker (the crossover)
#   qemu-socket  two QEMU VMs over -netdev socket (QEMU's own VM-to-VM path)
#   xover-qemu   an xover VM (virtio-net) -> a QEMU VM on the back-end (KVM only)
#   xover-xover  two xover VMs over the crossover (KVM only)
#   xover-testpmd  two xover VMs on DPDK's testpmd (vhost PMD, io
#                forwarding; xover as a vhost-user front-end; KVM only)
# QEMU uses KVM when it can, else TCG (then says so in the table). Rate =
# frames the receiver saw / its time (TSC cycles at the host TSC frequency).
# Prints a Markdown table and appends it, dated, to bench/RESULTS.md.
#
#   scripts/bench-vhost-user.sh [BUILD_DIR]     COUNT (200000), REPS (3), NO_APPEND=1,
#       KINDS (a subset of the kinds above; default: every one this host can run)
set -u
cd "$(dirname "$0")/.."
export XOVER_BUILD=$(realpath "${1:-${BUILD_DIR:-build}}")
root=$PWD
. tests/integration/lib.sh
. tests/integration/vhost_user.inc
count=${COUNT:-200000}
reps=${REPS:-3}
kvm=no
[ -r /dev/kvm ] && [ -w /dev/kvm ] && kvm=yes
accel=$([ $kvm = yes ] && echo KVM || echo TCG)
# In scripts/kvm-host.sh's emulated host (time_scale.inc) that KVM is
# itself emulated: the table says so, its ratios are not a real host's.
[ "$EMULATION_SCALE" -gt 1 ] && accel="$accel, emulated by scripts/kvm-host.sh,"
mac_a=52:54:00:7a:00:01
mac_b=52:54:00:7a:00:02
vu_broker
vu_backend ba "virtio-net,mac=$mac_a,crossover=bb+xa"
vu_backend bb "virtio-net,mac=$mac_b,crossover=ba+xa"

# The median line of "RATE LOST" lines, by rate.
median() { sort -g | awk '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }'; }
# rate NAME: "FRAMES_PER_S LOST" from a receiver's RESULT line (frames it
# saw over its time; "0 all" if it reported nothing).
rate() {
	local frames cycles lost
	frames=$(field "$1" frames) cycles=$(field "$1" cycles) lost=$(field "$1" lost)
	[ -n "$cycles" ] && [ "$cycles" != 0 ] || { echo "0 all"; return; }
	awk -v f="$frames" -v c="$cycles" -v k="$tsc" -v l="$lost" 'BEGIN { printf "%d %s\n", f / (c / (k * 1000)), l }'
}
# measure KIND REP: one pair of KIND; prints the receiver's rate.
measure() {
	local kind=$1 rx=$1-$2-rx tx=$1-$2-tx port
	local rxargs="nic=virtio role=rx count=$count tsc_khz=$tsc" txargs="nic=virtio role=tx count=$count size=64 tsc_khz=$tsc"
	case $kind in
	qemu-vhost)
		vu_qemu $rx "$tmp/bb.sock" $mac_b "$rxargs"
		wait_output $rx "link=up" 60 >/dev/null
		vu_qemu $tx "$tmp/ba.sock" $mac_a "$txargs dst=$mac_b" ;;
	qemu-socket)
		port=$(free_port 1)
		qemu_vm $rx "$rxargs" "socket,id=n0,listen=127.0.0.1:$port" "virtio-net-pci,disable-legacy=on,netdev=n0,mac=$mac_b"
		wait_output $rx "link=up" 60 >/dev/null
		qemu_vm $tx "$txargs dst=$mac_b" "socket,id=n0,connect=127.0.0.1:$port" \
			"virtio-net-pci,disable-legacy=on,netdev=n0,mac=$mac_a" ;;
	xover-qemu)
		vu_qemu $rx "$tmp/bb.sock" $mac_b "$rxargs"
		wait_output $rx "link=up" 60 >/dev/null
		vu_xover $tx xa "$txargs dst=$mac_b" "virtio-net,mac=52:54:00:7a:00:03,crossover=bb" ;;
	xover-xover)
		# No waiting for the receiver's link here: it comes up only once
		# its peer, the sender, has registered too (the sender waits for
		# it before its first frame; until the receiver's ring is ready,
		# frames wait, none is lost).
		vu_xover $rx xc "$rxargs timeout_ms=20000" "virtio-net,mac=52:54:00:7a:00:05,crossover=xb"
		sleep 0.3
		vu_xover $tx xb "$txargs dst=52:54:00:7a:00:05" "virtio-net,mac=52:54:00:7a:00:04,crossover=xc" ;;
	xover-testpmd)
		xover_vm $rx "$rxargs" "virtio-net,mac=$mac_b,backend=vhost-user:$tmp/tp1.sock"
		wait_output $rx "link=up" 60 >/dev/null
		sleep 1
		xover_vm $tx "$txargs dst=$mac_b" "virtio-net,mac=$mac_a,backend=vhost-user:$tmp/tp0.sock" ;;
	esac
	wait_vm $tx 300 >/dev/null
	wait_vm $rx 300 >/dev/null
	rate $rx
}
kinds="qemu-vhost qemu-socket"
if [ $kvm = yes ]; then
	kinds="$kinds xover-qemu xover-xover"
	if command -v dpdk-testpmd >/dev/null; then
		kinds="$kinds xover-testpmd"
		mkfifo "$tmp/tp.in"
		( exec 3<>"$tmp/tp.in"; dpdk-testpmd -l 0-1 --no-pci --no-huge -m 1024 --file-prefix "xover-bench-$$" \
			--vdev "net_vhost0,iface=$tmp/tp0.sock,queues=1" --vdev "net_vhost1,iface=$tmp/tp1.sock,queues=1" \
			-- --forward-mode=io --auto-start --nb-cores=1 --total-num-mbufs=16384 <&3 >"$tmp/testpmd.out" 2>&1 ) &
		lib_pids+=($!)
		at_exit "pkill -f -- '--file-prefix xover-bench-$$'"
		for _ in $(seq 200); do [ -S "$tmp/tp1.sock" ] && break; sleep 0.1; done
	fi
fi
kinds=${KINDS:-$kinds}
declare -A result
for kind in $kinds; do
	for i in $(seq "$reps"); do measure "$kind" "$i"; done >"$tmp/$kind.rates"
	result[$kind]=$(median <"$tmp/$kind.rates")
done
base=${result[qemu-socket]:-}  # KINDS without it: no ratios
base=${base%% *}
table="| pair ($accel for QEMU) | frames/s received (median of $reps, $count x 64 B) | frames lost | vs QEMU socket |
|---|---|---|---|"
for kind in $kinds; do
	r=${result[$kind]%% *} lost=${result[$kind]#* }
	ratio=$(awk -v a="$r" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')
	table="$table
| $kind | $r | $lost | $ratio |"
done
[ $kvm = yes ] || table="$table
| xover-qemu, xover-xover | not measured: no /dev/kvm on this host | | |"
echo "$table"
if [ -z "${NO_APPEND:-}" ]; then
	{
		echo
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — vhost-user (scripts/bench-vhost-user.sh), $(uname -r), $(nproc) CPUs, TSC $tsc kHz, $("$QEMU" --version | head -1)"
		echo
		echo "$table"
	} >>"$root/bench/RESULTS.md"
fi
