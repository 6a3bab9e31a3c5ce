#!/bin/bash
# labels: integration network
# Shared helpers for the network integration tests (net_*.sh): source it
#   . "$(dirname "$0")/lib.sh"
# It gives each test a scratch directory, free ports, background xover and
# QEMU runs of the nettest guest with timeouts, RESULT-line checks, and
# cleanup of everything it started.
#
# The test glob (tests/integration/*.sh) also picks this file up as a test
# of its own: run directly, it checks its helpers (no VM needed) and
# exits 0.
set -u

B=${XOVER_BUILD:-}
X=${B:+$B/xover}
NETTEST=${B:+$B/guests/nettest.elf}
QEMU=${QEMU:-qemu-system-x86_64}
# How qemu_vm accelerates (word-split): KVM, or "-accel kvm -accel tcg"
# where TCG will do (vhost_user.inc).
QEMU_ACCEL=${QEMU_ACCEL:--enable-kvm}
# Scale run times for slow builds (ASan): multiplies every VM timeout.
TIME_SCALE=${TIME_SCALE:-1}
. "$(dirname "${BASH_SOURCE[0]}")/time_scale.inc"

tmp=$(mktemp -d "/tmp/xover-net-$$.XXXX")
lib_pids=()  # what a test started in the background (add each pid): each tree is killed at exit
lib_cleanups=()
# kill_tree PID: PID and everything it started (a run's subshell, its
# `timeout`, the command under it: killing the subshell alone leaves them
# running until their timeout).
kill_tree() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$c"; done
	kill -9 "$1" 2>/dev/null
}
lib_cleanup() {
	local p c
	for c in "${lib_cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
	for p in "${lib_pids[@]}"; do kill_tree "$p"; done
	wait 2>/dev/null
	[ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap lib_cleanup EXIT
# at_exit 'command': runs at exit, before the scratch directory goes.
at_exit() { lib_cleanups+=("$1"); }

skip() { echo "SKIP: $*"; exit 77; }

# Prints each run's own lines (guest console, xover's log; FAIL_TAIL: how
# many) and its VM and NIC counters (the per-vCPU and per-bus ones would
# push the lines out), then fails the test. A test that defines
# stop_running_vms gets it called first, so that the counters of VMs still
# running are in their logs.
fail() {
	local f
	echo "FAIL: $*"
	declare -F stop_running_vms >/dev/null && stop_running_vms
	for f in "$tmp"/*.out "$tmp"/*.log; do
		[ -f "$f" ] || continue
		echo "--- $(basename "$f")"
		grep -av '^stats: \|host doesn.t support' "$f" | tail -"${FAIL_TAIL:-30}"
		grep -a '^stats: \(vm\|nic\)' "$f"
	done
	exit 1
}

need_kvm() { [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"; }
need_xover() {
	[ -n "$B" ] || skip "XOVER_BUILD not set"
	[ -x "$X" ] && [ -f "$NETTEST" ] || skip "xover or nettest.elf not built in $B"
	need_kvm
}
# need_netns PREFIX: skips without root, /dev/net/tun, ip and ping, or
# network namespaces; else sets $n (20-219, for names and addresses) and
# $ns, a private namespace PREFIX-PID-N with its loopback up, deleted at exit.
need_netns() {
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, tap)"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	command -v ip >/dev/null && command -v ping >/dev/null || skip "needs ip and ping"
	n=$((RANDOM % 200 + 20))
	ns=$1-$$-$n
	ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
	at_exit "ip netns delete $ns"
	ip netns exec "$ns" ip link set lo up
}
need_qemu() { command -v "$QEMU" >/dev/null || skip "$QEMU not installed"; need_kvm; }

# free_port [N]: the first of N consecutive ports (TCP and UDP) nobody
# uses, picked at random so parallel tests rarely race for the same one.
# nic_model e1000|virtio: the model name --nic takes.
nic_model() { [ "$1" = e1000 ] && echo e1000 || echo virtio-net; }

free_port() {
	local n=${1:-1} p i used
	used=$(ss -Htanu 2>/dev/null | awk '{print $5}' | sed 's/.*://' | sort -u)
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 30000))
		for ((i = 0; i < n; i++)); do
			grep -qx "$((p + i))" <<<"$used" && continue 2
		done
		echo "$p"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

# The host TSC in kHz, for the guest's tsc_khz= (its default is a guess).
host_tsc_khz() {
	local mhz
	mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | head -1)
	[ -n "$mhz" ] || mhz=$(awk -F': ' '/^cpu MHz/ {print $2; exit}' /proc/cpuinfo)
	awk -v m="${mhz:-2000}" 'BEGIN { printf "%d\n", m * 1000 }'
}

# --- background runs ---------------------------------------------------
# Each run NAME writes its console and stats to $tmp/NAME.out and, when it
# ends, its exit status to $tmp/NAME.rc (124: killed by the timeout).

# start NAME TIMEOUT_S command...: runs the command in the background.
start() {
	local name=$1 secs=$2
	shift 2
	secs=$(awk -v s="$secs" -v k="$TIME_SCALE" 'BEGIN { printf "%d\n", s * k }')
	( timeout -k 5 "$secs" "$@" >"$tmp/$name.out" 2>&1 </dev/null; echo $? >"$tmp/$name.rc" ) &
	lib_pids+=($!)
}

# xover_vm NAME "CMDLINE" NIC-SPEC [xover run options...]: nettest under
# xover, with every counter in its stats lines (--stats=all: tests compare
# counters that may be 0).
xover_vm() {
	local name=$1 cmdline=$2 nic=$3
	shift 3
	start "$name" "${VM_TIMEOUT:-120}" "$X" run --name "$name" --kernel "$NETTEST" \
		--cmdline "$cmdline" --nic "$nic" --stats=all "$@"
}

# qemu_device MODEL MAC: the -device argument for nic=e1000|virtio.
qemu_device() {
	case $1 in
	e1000) echo "e1000,netdev=n0,mac=$2" ;;
	virtio) echo "virtio-net-pci,disable-legacy=on,netdev=n0,mac=$2" ;;
	*) echo "qemu_device: unknown model $1" >&2; return 1 ;;
	esac
}

# qemu_vm NAME "CMDLINE" NETDEV DEVICE [qemu options...]: nettest under
# QEMU; its .rc holds the guest's status (QEMU's isa-debug-exit reports v
# as (v << 1) | 1; anything else is passed through as 100 + QEMU's code).
qemu_vm() {
	local name=$1 cmdline=$2 netdev=$3 device=$4 secs
	shift 4
	secs=$(awk -v s="${VM_TIMEOUT:-120}" -v k="$TIME_SCALE" 'BEGIN { printf "%d\n", s * k }')
	# shellcheck disable=SC2086  # QEMU_ACCEL is several words
	( timeout -k 5 "$secs" "$QEMU" $QEMU_ACCEL -cpu qemu64 -m 128M \
		-kernel "$NETTEST" -append "$cmdline" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-display none -serial stdio -monitor none -no-reboot \
		-netdev "$netdev" -device "$device" "$@" >"$tmp/$name.out" 2>&1 </dev/null
	  rc=$?
	  if [ $((rc & 1)) -eq 1 ] && [ $rc -lt 124 ]; then rc=$(((rc - 1) / 2)); else rc=$((100 + rc)); fi
	  echo $rc >"$tmp/$name.rc" ) &
	lib_pids+=($!)
}

# wait_vm NAME [TIMEOUT_S]: prints the run's exit status once it has ended
# ("timeout" if it has not within TIMEOUT_S, default $WAIT_VM_LIMIT or 300).
wait_vm() {
	local name=$1 limit=${2:-${WAIT_VM_LIMIT:-300}} i
	for ((i = 0; i < limit * 10; i++)); do
		if [ -s "$tmp/$name.rc" ]; then
			cat "$tmp/$name.rc"
			return 0
		fi
		sleep 0.1
	done
	echo timeout
}

# wait_output NAME PATTERN [TIMEOUT_S]: true once the run printed a line
# matching PATTERN (grep -E), false on timeout or if it ended first.
wait_output() {
	local name=$1 pattern=$2 limit=${3:-60} i
	for ((i = 0; i < limit * 10; i++)); do
		[ -f "$tmp/$name.out" ] && grep -aqE "$pattern" "$tmp/$name.out" && return 0
		[ -s "$tmp/$name.rc" ] && return 1
		sleep 0.1
	done
	return 1
}

# --- results -------------------------------------------------------------

# result NAME: the guest's RESULT line (empty if none).
result() { tr -d '\r' <"$tmp/$1.out" 2>/dev/null | grep -ao 'RESULT .*' | tail -1; }

# field NAME KEY: KEY's value in the RESULT line (empty if absent).
field() { result "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# stat NAME KEY: a counter from xover's --stats lines (first match).
stat() { grep -ao " $2=[0-9]*" "$tmp/$1.out" 2>/dev/null | head -1 | cut -d= -f2; }

# expect NAME KEY=VALUE...: fails unless the run exited 0 and its RESULT
# line has every KEY=VALUE.
expect() {
	local name=$1 rc kv got
	shift
	rc=$(wait_vm "$name" "${WAIT_LIMIT:-300}")
	[ "$rc" = 0 ] || fail "$name: exit status $rc"
	[ -n "$(result "$name")" ] || fail "$name: no RESULT line"
	for kv in "$@"; do
		got=$(field "$name" "${kv%%=*}")
		[ "$got" = "${kv#*=}" ] || fail "$name: ${kv%%=*}=$got, expected ${kv#*=}"
	done
	return 0
}

# elapsed SINCE: seconds since SINCE (from $SECONDS-like `date +%s.%N`).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }'; }

# --- self-test when run as a test of its own -------------------------------
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	p=$(free_port 2) || fail "free_port"
	[ "$p" -ge 20000 ] && [ "$p" -lt 50001 ] || fail "free_port gave $p"
	k=$(host_tsc_khz)
	[ "$k" -gt 100000 ] || fail "host_tsc_khz gave $k"
	start fake 10 sh -c 'echo "nettest: link=up"; echo "RESULT role=rx frames=5 lost=0"; exit 0'
	expect fake role=rx frames=5 lost=0
	[ "$(field fake frames)" = 5 ] || fail "field"
	start slow 1 sleep 5
	[ "$(wait_vm slow 20)" = 124 ] || fail "timeout status"
	start ends 10 sh -c 'echo booting; exit 3'
	wait_output ends "never printed" 5 && fail "wait_output saw a line that was not there"
	[ "$(wait_vm ends)" = 3 ] || fail "exit status"
	printf 'guest line\nstats: vcpu0 exits=1\nstats: nic0 rx=5\n' >"$tmp/logged.out"
	got=$(stop_running_vms() { echo "vms stopped"; }; fail "on purpose")
	for want in "FAIL: on purpose" "vms stopped" "--- logged.out" "guest line" "stats: nic0 rx=5"; do
		grep -qF -- "$want" <<<"$got" || fail "fail() did not print '$want': $got"
	done
	! grep -q vcpu0 <<<"$got" || fail "fail() printed the per-vCPU counters"
	echo "PASS: lib.sh helpers (port $p, TSC $k kHz)"
	exit 0
fi
