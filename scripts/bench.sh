#!/bin/bash
# xover vs QEMU, measured in the same run on the same host (only ratios
# mean anything across machines). Prints one Markdown table and appends it,
# dated, to bench/RESULTS.md.
#
#   scripts/bench.sh [BUILD_DIR]        (a Release build; default $BUILD_DIR,
#                                        else build/)
#
# Rows:
#   boot    hello.elf start -> exit: wall time and peak RSS, median of RUNS;
#           QEMU runs the same PVH kernel with -M microvm.
#   net     nettest tx -> rx between two VMs of the same kind, per NIC
#           model, transport (udp: xover udp: / QEMU -netdev dgram; stream:
#           stream-listen/-connect / -netdev socket) and frame size. The
#           sender is not paced: over udp, what the receiver cannot take is
#           lost and reported. Rate = frames the receiver saw / its time
#           (TSC cycles at the host TSC frequency, passed as tsc_khz=).
#           exits/frame: the VMs' vCPU exits over the frames, tx+rx (xover
#           only: QEMU does not report them).
#   rtt     role=ping -> role=echo over udp, 64-byte frames: median and p99.
#   crossover rows: see crossover_rows() below.
#   rxbound rows: a receiver slower than its sender, see rxbound_rows().
# Every throughput row but rxbound's, QEMU's included, runs nettest with the
# same doorbell batching, `batch=BATCH rx_batch=RX_BATCH` (TDT/notify once per
# BATCH frames, RX buffers returned RX_BATCH at a time): each doorbell is a
# VM exit, which costs ~26 us on this host, so the default of 32 measures
# exits rather than the data path.
# Environment: RUNS (5), COUNT_SMALL (50000), COUNT_LARGE (20000),
#   XCOUNT_SMALL (500000), XCOUNT_LARGE (100000): frames per crossover pair,
#   XREPS (3): runs per crossover pair (the median is kept, see xc_median),
#   PINGS (2000), BATCH (128), RX_BATCH (128), QEMU, NO_APPEND=1 (print only),
#   XOVER_BIN (an xover binary to use instead of BUILD_DIR/xover: compare
#   another build with the same guests), SECTIONS, XSPECS, RXB_* (rxbound).
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
export XOVER_BUILD=$(cd "${1:-${BUILD_DIR:-$src/build}}" && pwd)
. "$src/tests/integration/lib.sh"
X=${XOVER_BIN:-$X}
need_xover
need_qemu
# Host CPU of each VMM process: xover runs (lib.sh's start, redefined here)
# and QEMU runs (scripts/bench/timed-qemu.sh) go under /usr/bin/time, which
# writes "USER SYS" seconds, children included, to $tmp/NAME.cpu.
start() {
	local name=$1 secs=$2
	shift 2
	secs=$(awk -v s="$secs" -v k="$TIME_SCALE" 'BEGIN { printf "%d\n", s * k }')
	( /usr/bin/time -f "%U %S" -o "$tmp/$name.cpu" timeout -k 5 "$secs" "$@" >"$tmp/$name.out" 2>&1 </dev/null
	  echo $? >"$tmp/$name.rc" ) &
	lib_pids+=($!)
}
export QEMU_REAL=$QEMU
QEMU=$here/bench/timed-qemu.sh
qvm() { CPU_OUT=$tmp/$1.cpu qemu_vm "$@"; }
HELLO=$B/guests/hello.elf
runs=${RUNS:-5}
count_small=${COUNT_SMALL:-50000}
count_large=${COUNT_LARGE:-20000}
# A crossover pair moves 1M frames/s: 50000 frames would be over in 50 ms.
xcount_small=${XCOUNT_SMALL:-500000}
xcount_large=${XCOUNT_LARGE:-100000}
pings=${PINGS:-2000}
burst="batch=${BATCH:-128} rx_batch=${RX_BATCH:-128}"
tsc=$(host_tsc_khz)
mac_a=52:54:00:5a:00:01
mac_b=52:54:00:5a:00:02
rows=()

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f\n", a / b; else print "n/a" }'; }
row() { rows+=("| $(IFS='|'; echo "$*" | sed 's/|/ | /g') |"); }

# ---------------------------------------------------------------- boot
# Wall time and peak RSS (kB) of one run of a command, "SECONDS KB".
measure() { /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>&1 </dev/null; tail -1 "$tmp/time"; }

boot_rows() {
	local i x q
	for ((i = 0; i < runs; i++)); do
		measure "$X" run --kernel "$HELLO" --cmdline bench >>"$tmp/boot.x"
		measure "$X" run --kernel "$HELLO" --cmdline bench --mem 8M >>"$tmp/boot.x8"
		measure "$QEMU_REAL" -M microvm -enable-kvm -cpu qemu64 -m 128M -kernel "$HELLO" -append bench \
			-device isa-debug-exit,iobase=0xf4,iosize=0x04 -display none -serial none -monitor none \
			-no-reboot >>"$tmp/boot.q"
	done
	local xt xm x8 qt qm
	xt=$(cut -d' ' -f1 "$tmp/boot.x" | median); xm=$(cut -d' ' -f2 "$tmp/boot.x" | median)
	x8=$(cut -d' ' -f2 "$tmp/boot.x8" | median)
	qt=$(cut -d' ' -f1 "$tmp/boot.q" | median); qm=$(cut -d' ' -f2 "$tmp/boot.q" | median)
	row "boot hello (128M)" "-" "-" "-" "${xt} s" "${xm} kB RSS (${x8} kB with --mem 8M)" "-" "-" \
		"${qt} s" "${qm} kB RSS" "-" "time $(ratio "$qt" "$xt")x, RSS $(ratio "$qm" "$xm")x"
}

# ---------------------------------------------------------------- network
# MODELS: "e1000", "virtio" (both ends) or "TX-RX", e.g. "e1000-virtio".
txm() { echo "${1%%-*}"; }
rxm() { echo "${1##*-}"; }

# rate NAME: "frames/s Mbit/s" from the receiver's RESULT line.
# guest_khz NAME: the TSC rate the guest counted cycles with: its CPUID
# 0x40000010 leaf under xover (printed as "tsc_hz=N (cpuid ..."), else the
# host's (passed to QEMU guests as tsc_khz=).
guest_khz() {
	local hz
	hz=$(grep -ao 'tsc_hz=[0-9]* (cpuid' "$tmp/$1.out" 2>/dev/null | head -1 | sed 's/tsc_hz=\([0-9]*\).*/\1/')
	[ -n "$hz" ] && [ "$hz" -gt 0 ] && echo $((hz / 1000)) || echo "$tsc"
}
rate() {
	awk -v f="$(field "$1" frames)" -v b="$(field "$1" bytes)" -v c="$(field "$1" cycles)" -v k="$(guest_khz "$1")" \
		'BEGIN { if (c + 0 == 0) { print "n/a n/a"; exit } s = c / (k * 1000); printf "%.0f %.1f\n", f / s, b * 8 / s / 1e6 }'
}
loss() { awk -v l="$(field "$1" lost)" -v f="$(field "$1" frames)" 'BEGIN { if (l + f > 0) printf "%.1f%%\n", 100 * l / (l + f); else print "n/a" }'; }
exits() { awk -v a="$(grep -ao 'vcpu0 exits=[0-9]*' "$tmp/$1.out" | cut -d= -f2)" \
	-v b="$(grep -ao 'vcpu0 exits=[0-9]*' "$tmp/$2.out" | cut -d= -f2)" -v f="$3" \
	'BEGIN { if (f + 0 > 0) printf "%.3f\n", (a + b) / f; else print "n/a" }'; }

# x_pair MODEL TRANSPORT SIZE COUNT / q_pair ...: tx -> rx, receiver first.
x_pair() {
	local model=$1 transport=$2 size=$3 n=$4 name=x-$1-$2-$3 port ba bb
	port=$(free_port 2) || return
	if [ "$transport" = udp ]; then
		ba="udp:127.0.0.1:$port@127.0.0.1:$((port + 1))"; bb="udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
	else
		ba="stream-listen:127.0.0.1:$port"; bb="stream-connect:127.0.0.1:$port"
	fi
	xover_vm "$name-rx" "role=rx count=$n $burst timeout_ms=2000 start_timeout_ms=60000 tsc_khz=$tsc" "$(nic_model "$(rxm "$model")"),mac=$mac_a,backend=$ba"
	# A stream listener's link comes up with the connection: just let it bind.
	if [ "$transport" = udp ]; then wait_output "$name-rx" "link=up" 60; else sleep 0.5; fi
	xover_vm "$name-tx" "role=tx count=$n $burst size=$size dst=$mac_a timeout_ms=2000 tsc_khz=$tsc" \
		"$(nic_model "$(txm "$model")"),mac=$mac_b,backend=$bb"
	wait_vm "$name-tx" >/dev/null; wait_vm "$name-rx" >/dev/null
}
# q_pair MODEL TRANSPORT SIZE COUNT [TAG [RX_OPTS [TX_OPTS]]]: TRANSPORT is
# udp (-netdev dgram), stream (-netdev socket, the older stream backend the
# other rows have always used) or netstream (-netdev stream); the runs are
# named TAG-MODEL-TRANSPORT-SIZE (TAG: q), and each guest gets its OPTS
# (default: $burst) on its command line.
q_pair() {
	local model=$1 transport=$2 size=$3 n=$4 name=${5:-q}-$1-$2-$3 rxo=${6:-$burst} txo=${7:-$burst} port na nb hold=()
	port=$(free_port 2) || return
	case $transport in
	udp)
		na="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$port,remote.type=inet,remote.host=127.0.0.1,remote.port=$((port + 1))"
		nb="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$((port + 1)),remote.type=inet,remote.host=127.0.0.1,remote.port=$port" ;;
	netstream)
		na="stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=$port"
		nb="stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=$port"
		# QEMU 7.2's stream end crashes (SIGSEGV, seen here on either
		# end) when its peer hangs up while it still holds frames for a
		# guest that has not taken them: the sender stays up (hold_ms=)
		# until the receiver is done, then is stopped below.
		txo="$txo hold_ms=$((${VM_TIMEOUT:-120} * 1000))"
		hold=(-pidfile "$tmp/$name-tx.pid") ;;
	*)
		na="socket,id=n0,listen=127.0.0.1:$port"; nb="socket,id=n0,connect=127.0.0.1:$port" ;;
	esac
	qvm "$name-rx" "nic=$(rxm "$model") role=rx count=$n $rxo timeout_ms=2000 start_timeout_ms=60000 tsc_khz=$tsc" "$na" \
		"$(qemu_device "$(rxm "$model")" "$mac_a")"
	wait_output "$name-rx" "link=up" 60
	sleep 1 # QEMU's e1000 RX stalls on frames that arrive right after it is enabled
	qvm "$name-tx" "nic=$(txm "$model") role=tx count=$n $txo size=$size dst=$mac_a timeout_ms=2000 tsc_khz=$tsc" \
		"$nb" "$(qemu_device "$(txm "$model")" "$mac_b")" "${hold[@]}"
	if [ ${#hold[@]} -gt 0 ]; then
		wait_vm "$name-rx" >/dev/null
		wait_output "$name-tx" "RESULT" 60
		[ ! -f "$tmp/$name-tx.rc" ] && [ -s "$tmp/$name-tx.pid" ] && kill "$(cat "$tmp/$name-tx.pid")" 2>/dev/null
	fi
	wait_vm "$name-tx" >/dev/null; wait_vm "$name-rx" >/dev/null
}

net_rows() {
	local model transport size n x q xr qr
	for model in e1000 virtio; do
		for transport in udp stream; do
			for size in 64 1514; do
				[ "$size" = 64 ] && n=$count_small || n=$count_large
				x_pair "$model" "$transport" "$size" "$n"
				q_pair "$model" "$transport" "$size" "$n"
				x=x-$model-$transport-$size; q=q-$model-$transport-$size
				read -r xr xm <<<"$(rate "$x-rx")"
				read -r qr qm <<<"$(rate "$q-rx")"
				row "net tx->rx" "$model" "$transport" "$size" "$xr" "$xm" "$(loss "$x-rx")" \
					"$(exits "$x-tx" "$x-rx" "$(field "$x-rx" frames)")" "$qr" "$qm" "$(loss "$q-rx")" \
					"$(ratio "$xr" "$qr")"
			done
		done
	done
}

# x_exit MODEL: nettest role=exitcost, the median time of one empty TX
# doorbell (a userspace VM exit; virtio-net with ioeventfd=off, as a
# crossover NIC's) with that NIC, measured in this run: a crossover round
# trip is two doorbells, one exit in each VM.
x_exit() {
	local x=
	[ "$1" = virtio ] && x=,ioeventfd=off
	xover_vm "xe-$1" "role=exitcost count=2000" "$(nic_model "$1"),backend=none$x"
	wait_vm "xe-$1" >/dev/null
}

# rtt MODEL: ping-pong over udp, xover pair and QEMU pair.
rtt_rows() {
	local model port x=x-rtt q=q-rtt xs qs
	for model in e1000 virtio; do
		port=$(free_port 2) || return
		xover_vm "$x-$model-echo" "role=echo count=$pings tsc_khz=$tsc" \
			"$(nic_model "$model"),mac=$mac_a,backend=udp:127.0.0.1:$port@127.0.0.1:$((port + 1))"
		xover_vm "$x-$model-ping" "role=ping count=$pings size=64 dst=$mac_a tsc_khz=$tsc" \
			"$(nic_model "$model"),mac=$mac_b,backend=udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
		wait_vm "$x-$model-ping" >/dev/null; wait_vm "$x-$model-echo" >/dev/null
		port=$(free_port 2) || return
		qvm "$q-$model-echo" "nic=$model role=echo count=$pings tsc_khz=$tsc" \
			"dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$port,remote.type=inet,remote.host=127.0.0.1,remote.port=$((port + 1))" \
			"$(qemu_device "$model" "$mac_a")"
		qvm "$q-$model-ping" "nic=$model role=ping count=$pings size=64 dst=$mac_a tsc_khz=$tsc" \
			"dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$((port + 1)),remote.type=inet,remote.host=127.0.0.1,remote.port=$port" \
			"$(qemu_device "$model" "$mac_b")"
		wait_vm "$q-$model-ping" >/dev/null; wait_vm "$q-$model-echo" >/dev/null
		xs="$(us "$x-$model-ping" median_cycles) / $(us "$x-$model-ping" p99_cycles) us"
		qs="$(us "$q-$model-ping" median_cycles) / $(us "$q-$model-ping" p99_cycles) us"
		row "rtt median / p99" "$model" "udp" "64" "$xs" "-" "-" \
			"$(exits "$x-$model-ping" "$x-$model-echo" "$((2 * $(field "$x-$model-ping" frames || echo 0)))")" \
			"$qs" "-" "-" "$(ratio "$(us "$q-$model-ping" median_cycles)" "$(us "$x-$model-ping" median_cycles)")"
	done
}

# ---------------------------------------------------------------- crossover
# Two VMs wired NIC to NIC by the crossover (copy mode, and window mode:
# e1000 <-> e1000 and virtio <-> virtio with nettest window=1 and
# mode=window on both NICs), one
# private broker for the whole run, against the same nettest over xover's
# own udp: path and QEMU's -netdev socket (stream) with the same models,
# size and count. Extra columns: exits per frame of each end, bytes copied
# per frame (xover_bytes_copied of both ends / frames received) and host
# CPU seconds per million frames (user+sys of both VMM processes, whole
# run: boot and waiting included, and the polling guests keep their vCPU
# busy, so it mostly follows the run's length; the broker's CPU is listed
# once below the table).
bench_dir=/tmp/xover-bench-$$
broker=$bench_dir/b.sock
xrows=()
xrow() { xrows+=("| $(IFS='|'; echo "$*" | sed 's/|/ | /g') |"); }
# vexits NAME FRAMES: one VM's vCPU exits per frame.
vexits() { awk -v a="$(grep -ao 'vcpu0 exits=[0-9]*' "$tmp/$1.out" | head -1 | cut -d= -f2)" -v f="$2" \
	'BEGIN { if (f + 0 > 0 && a != "") printf "%.3f\n", a / f; else print "n/a" }'; }
# cpu_per_m FRAMES NAME...: the runs' host CPU seconds per million frames.
cpu_per_m() {
	local f=$1 n s=0 c
	shift
	for n; do
		c=$(tail -1 "$tmp/$n.cpu" 2>/dev/null | awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { print $1 + $2 }')
		[ -n "$c" ] || { echo n/a; return; }
		s=$(awk -v s="$s" -v c="$c" 'BEGIN { print s + c }')
	done
	awk -v s="$s" -v f="$f" 'BEGIN { if (f + 0 > 0) printf "%.1f\n", s * 1e6 / f; else print "n/a" }'
}
# copied NAME NAME FRAMES: xover_bytes_copied of both ends per frame.
copied() { awk -v a="$(stat "$1" xover_bytes_copied)" -v b="$(stat "$2" xover_bytes_copied)" -v f="$3" \
	'BEGIN { if (f + 0 > 0) printf "%.1f\n", (a + b) / f; else print "n/a" }'; }
# us NAME KEY: a cycle count of the RESULT line in microseconds.
us() { awk -v c="$(field "$1" "$2")" -v k="$(guest_khz "$1")" 'BEGIN { if (c + 0 > 0) printf "%.1f\n", c / k * 1000; else print "n/a" }'; }
mp() { echo "$(us "$1" median_cycles) / $(us "$1" p99_cycles)"; }
# broker_up / broker_down: a private broker for one section (crossover,
# rxbound); broker_down leaves its CPU seconds in last_broker_cpu.
broker_pid=
broker_up() {
	local i
	mkdir -p -m 700 "$bench_dir" # a broker refuses a directory other users can reach
	"$X" broker --broker "$broker" >>"$tmp/broker.out" 2>&1 </dev/null &
	broker_pid=$!
	at_exit "kill $broker_pid; rm -rf $bench_dir"
	for i in $(seq 100); do [ -S "$broker" ] && break; sleep 0.1; done
}
broker_down() {
	last_broker_cpu=$(awk '{ printf "%.2f\n", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$broker_pid/stat" 2>/dev/null || echo n/a)
	kill "$broker_pid" 2>/dev/null
	wait "$broker_pid" 2>/dev/null
	rm -f "$broker" # the next section's broker_up waits for a fresh socket
}

# A crossover MODE is copy or window, optionally with NIC options after a
# slash ("copy/ioeventfd=on"); mode_base MODE drops them, mode_tag MODE
# makes it usable in a file name.
mode_base() { echo "${1%%/*}"; }
mode_tag() { local t=${1//\//-}; echo "${t//=/-}"; }
# xc_nics MODELS MODE NAME PEER MAC END: the --nic of one crossover end.
xc_nic() {
	local m opts=
	[ "$6" = tx ] && m=$(txm "$1") || m=$(rxm "$1")
	[ "$2" != "$(mode_base "$2")" ] && opts=,${2#*/}
	echo "$(nic_model "$m"),mac=$5,crossover=$4$([ "$(mode_base "$2")" = window ] && echo ,mode=window)$opts"
}
# xc_pair MODELS MODE SIZE COUNT [TAG [RX_OPTS [TX_OPTS]]]: tx -> rx over
# the crossover, receiver first; runs named TAG-MODELS-MODE-SIZE (TAG: xc),
# each guest with its OPTS (default: $burst).
xc_pair() {
	local models=$1 mode=$2 size=$3 n=$4 name=${5:-xc}-$1-$(mode_tag "$2")-$3 rxo=${6:-$burst} txo=${7:-$burst} w=
	[ "$(mode_base "$mode")" = window ] && w=" window=1"
	xover_vm "$name-rx" "role=rx count=$n $rxo timeout_ms=2000 start_timeout_ms=60000$w" \
		"$(xc_nic "$models" "$mode" "$name-rx" "$name-tx" "$mac_a" rx)" --broker "$broker"
	# Unlike the udp pairs, a crossover NIC's link is up only once the peer
	# is there, and nettest gives up soon after boot: start both now.
	sleep 0.3
	xover_vm "$name-tx" "role=tx count=$n $txo size=$size dst=$mac_a timeout_ms=2000$w" \
		"$(xc_nic "$models" "$mode" "$name-tx" "$name-rx" "$mac_b" tx)" --broker "$broker"
	wait_vm "$name-tx" >/dev/null; wait_vm "$name-rx" >/dev/null
}
# xc_rtt MODELS MODE: role=ping (tx model) -> role=echo (rx model), 64 B.
xc_rtt() {
	local models=$1 mode=$2 name=xr-$1-$(mode_tag "$2") w=
	[ "$(mode_base "$mode")" = window ] && w=" window=1"
	xover_vm "$name-echo" "role=echo count=$pings start_timeout_ms=60000$w" \
		"$(xc_nic "$models" "$mode" "$name-echo" "$name-ping" "$mac_a" rx)" --broker "$broker"
	sleep 0.3 # see xc_pair
	xover_vm "$name-ping" "role=ping count=$pings size=64 dst=$mac_a$w" \
		"$(xc_nic "$models" "$mode" "$name-ping" "$name-echo" "$mac_b" tx)" --broker "$broker"
	wait_vm "$name-ping" >/dev/null; wait_vm "$name-echo" >/dev/null
}
# x_rtt MODELS (xover udp:) / q_rtt MODELS (QEMU -netdev socket, stream).
x_rtt() {
	local models=$1 name=x-rtt-$1 port
	port=$(free_port 2) || return
	xover_vm "$name-echo" "role=echo count=$pings start_timeout_ms=60000" \
		"$(nic_model "$(rxm "$models")"),mac=$mac_a,backend=udp:127.0.0.1:$port@127.0.0.1:$((port + 1))"
	wait_output "$name-echo" "link=up" 60
	xover_vm "$name-ping" "role=ping count=$pings size=64 dst=$mac_a" \
		"$(nic_model "$(txm "$models")"),mac=$mac_b,backend=udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
	wait_vm "$name-ping" >/dev/null; wait_vm "$name-echo" >/dev/null
}
q_rtt() {
	local models=$1 name=qs-$1 port
	port=$(free_port 2) || return
	qvm "$name-echo" "nic=$(rxm "$models") role=echo count=$pings start_timeout_ms=60000 tsc_khz=$tsc" \
		"socket,id=n0,listen=127.0.0.1:$port" "$(qemu_device "$(rxm "$models")" "$mac_a")"
	wait_output "$name-echo" "link=up" 60
	sleep 1 # see q_pair
	qvm "$name-ping" "nic=$(txm "$models") role=ping count=$pings size=64 dst=$mac_a tsc_khz=$tsc" \
		"socket,id=n0,connect=127.0.0.1:$port" "$(qemu_device "$(txm "$models")" "$mac_b")"
	wait_vm "$name-ping" >/dev/null; wait_vm "$name-echo" >/dev/null
}

# xc_median MODELS MODE SIZE COUNT TAG [RX_OPTS [TX_OPTS]]: xc_pair
# XREPS (3) times, interleaved with nothing else, and keeps the run whose
# receiver rate is the median as TAG-MODELS-MODE-SIZE. On a 2-core host
# one pair's rate swings by 1.4x between runs; a single run cannot tell
# two rows apart, the median of three usually can.
xc_median() {
	local models=$1 mode=$2 size=$3 n=$4 tag=$5 i r best name
	name=$tag-$models-$(mode_tag "$mode")-$size
	local -a runs=()
	for i in $(seq "${XREPS:-3}"); do
		xc_pair "$models" "$mode" "$size" "$n" "$tag$i" "${6:-$burst}" "${7:-$burst}"
		read -r r _ <<<"$(rate "$tag$i-$models-$(mode_tag "$mode")-$size-rx")"
		runs+=("${r/n\/a/0} $i")
	done
	best=$(printf '%s\n' "${runs[@]}" | sort -g | awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }')
	for f in rx.out rx.cpu rx.rc tx.out tx.cpu tx.rc; do
		[ -f "$tmp/$tag$best-$models-$(mode_tag "$mode")-$size-$f" ] &&
			cp "$tmp/$tag$best-$models-$(mode_tag "$mode")-$size-$f" "$tmp/$name-$f"
	done
	xreps_seen+=("$name: $(printf '%s\n' "${runs[@]}" | awk '{ print $1 }' | sort -g | tr '\n' ' ')")
}
xreps_seen=()

crossover_rows() {
	local spec models mode size n x u q fr xr xm ur qr qm cx cu cq
	broker_up
	for spec in ${XSPECS:-e1000:copy virtio:copy virtio:copy/ioeventfd=on e1000-virtio:copy e1000:window virtio:window virtio:window/ioeventfd=on}; do
		models=${spec%%:*}; mode=${spec#*:}
		for size in 64 1514; do
			[ "$size" = 64 ] && n=$count_small || n=$count_large
			x=xc-$models-$(mode_tag "$mode")-$size; u=x-$models-udp-$size; q=q-$models-stream-$size
			if [ "$size" = 64 ]; then
				xc_median "$models" "$mode" "$size" "$xcount_small" xc
			else
				xc_median "$models" "$mode" "$size" "$xcount_large" xc
			fi
			# net_rows ran the udp and stream pairs for e1000 and virtio already.
			[ -f "$tmp/$u-rx.out" ] || x_pair "$models" udp "$size" "$n"
			[ -f "$tmp/$q-rx.out" ] || q_pair "$models" stream "$size" "$n"
			fr=$(field "$x-rx" frames)
			read -r xr xm <<<"$(rate "$x-rx")"
			read -r ur _ <<<"$(rate "$u-rx")"
			read -r qr qm <<<"$(rate "$q-rx")"
			cx=$(cpu_per_m "$fr" "$x-tx" "$x-rx")
			cu=$(cpu_per_m "$(field "$u-rx" frames)" "$u-tx" "$u-rx")
			cq=$(cpu_per_m "$(field "$q-rx" frames)" "$q-tx" "$q-rx")
			row "crossover tx->rx" "$models" "crossover $mode (vs QEMU stream)" "$size" "$xr" "$xm" "$(loss "$x-rx")" \
				"$(exits "$x-tx" "$x-rx" "$fr")" "$qr" "$qm" "$(loss "$q-rx")" "$(ratio "$xr" "$qr")"
			xrow "$mode" "$(txm "$models")->$(rxm "$models")" "$size" "$xr" "$xm" "$(loss "$x-rx")" \
				"$(vexits "$x-tx" "$fr") / $(vexits "$x-rx" "$fr")" "$(copied "$x-tx" "$x-rx" "$fr")" "$cx" \
				"$ur ($(loss "$u-rx") lost)" "$cu" "$qr ($(loss "$q-rx") lost)" "$cq" \
				"**$(ratio "$xr" "$qr")x**" "$(ratio "$xr" "$ur")x" "$(ratio "$cq" "$cx")x"
		done
	done
	x_exit e1000
	x_exit virtio
	local two
	for spec in ${XSPECS:-e1000:copy virtio:copy virtio:copy/ioeventfd=on e1000-virtio:copy e1000:window virtio:window virtio:window/ioeventfd=on}; do
		models=${spec%%:*}; mode=${spec#*:}
		x=xr-$models-$(mode_tag "$mode"); u=x-rtt-$models; q=qs-$models
		two=$(awk -v a="$(us "xe-$(txm "$models")" median_cycles)" -v b="$(us "xe-$(rxm "$models")" median_cycles)" \
			'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f\n", a + b; else print "n/a" }')
		xc_rtt "$models" "$mode"
		[ -f "$tmp/$u-ping.out" ] || x_rtt "$models"
		[ -f "$tmp/$q-ping.out" ] || q_rtt "$models"
		fr=$(field "$x-ping" frames)
		row "crossover rtt median / p99" "$models" "crossover $mode (vs QEMU stream)" 64 "$(mp "$x-ping") us" - - \
			"$(exits "$x-ping" "$x-echo" "$((2 * ${fr:-0}))")" "$(mp "$q-ping") us" - - \
			"$(ratio "$(us "$q-ping" median_cycles)" "$(us "$x-ping" median_cycles)")"
		xrtt+=("| $mode | $(txm "$models")->$(rxm "$models") | $(mp "$x-ping") | $(vexits "$x-ping" "$fr") / $(vexits "$x-echo" "$fr") | $(copied "$x-ping" "$x-echo" "$((2 * ${fr:-0}))") | $(mp "$u-ping") | $(mp "$q-ping") | **$(ratio "$(us "$q-ping" median_cycles)" "$(us "$x-ping" median_cycles)")x** | $(ratio "$(us "$u-ping" median_cycles)" "$(us "$x-ping" median_cycles)")x | $two | $(ratio "$(us "$x-ping" median_cycles)" "$two")x |")
	done
	broker_down
	broker_cpu=$last_broker_cpu
}
xrtt=()
broker_cpu=n/a

# ---------------------------------------------------------------- rxbound
# A receiver slower than its sender (issue 10's measurement). Every guest
# gets `$rxb_opts`: the sender rings its doorbell every RXB_BATCH (32)
# frames; the receiver gives its RX buffers back RXB_RX_BATCH (32) at a
# time, reads a device register after each return (rx_read_reg=1: the
# flush real drivers do, a second exit per return) and spends RXB_WORK_NS
# (100) ns on every frame (rx_work_ns=); the sender has no use for the RX
# options. Crossover pairs RXB_SPECS (e1000->e1000 and virtio->virtio,
# copy and window mode), 64 B (RXB_COUNT_SMALL frames, 200000) and 1514 B
# (RXB_COUNT_LARGE, 50000), against QEMU e1000 over -netdev socket and
# QEMU virtio-net over -netdev stream with the same options, in the same
# run. From the sender's --stats, per xover row: its process's wake-ups per
# 1000 frames (counters whose name ends in doorbell_wakeups, summed over
# its NICs; n/a from a build without them) and xover_busy_peer_full (TX
# batches that found the peer's ring full, of xover_batches); and the
# receiver's xover_doorbells_rung per 1000 frames (before the data-plane
# change, each of them wakes the sender's I/O thread).
rxb_opts="batch=${RXB_BATCH:-32} rx_batch=${RXB_RX_BATCH:-32} rx_read_reg=1 rx_work_ns=${RXB_WORK_NS:-100}"
rxb_small=${RXB_COUNT_SMALL:-200000}
rxb_large=${RXB_COUNT_LARGE:-50000}
rxrows=()
rxb_broker_cpu=n/a
# sum_stat NAME KEY: the sum of every counter whose name ends in KEY in
# NAME's --stats lines; empty if there is none.
sum_stat() { grep -a 'stats: ' "$tmp/$1.out" 2>/dev/null | grep -aoE " [a-z0-9_]*$2=[0-9]+" |
	awk -F= '{ s += $2; n++ } END { if (n) print s }'; }
# xratio A B: A/B as "2.50x", or n/a.
xratio() { local r; r=$(ratio "$1" "$2"); [ "$r" = n/a ] && echo n/a || echo "${r}x"; }
# per_k COUNT FRAMES: COUNT per 1000 frames; n/a without a COUNT.
per_k() { awk -v c="$1" -v f="$2" 'BEGIN { if (c != "" && f + 0 > 0) printf "%.2f\n", 1000 * c / f; else print "n/a" }'; }

rxbound_rows() {
	local spec models mode size n x q qe qv fr xr xm qr qm qer qvr
	broker_up
	for size in 64 1514; do
		[ "$size" = 64 ] && n=$rxb_small || n=$rxb_large
		qe=qb-e1000-stream-$size; qv=qb-virtio-netstream-$size
		q_pair e1000 stream "$size" "$n" qb "$rxb_opts" "$rxb_opts"
		q_pair virtio netstream "$size" "$n" qb "$rxb_opts" "$rxb_opts"
		read -r qer _ <<<"$(rate "$qe-rx")"
		read -r qvr _ <<<"$(rate "$qv-rx")"
		for spec in ${RXB_SPECS:-e1000:copy virtio:copy e1000:window virtio:window}; do
			models=${spec%%:*}; mode=${spec#*:}
			x=xb-$models-$(mode_tag "$mode")-$size
			xc_median "$models" "$mode" "$size" "$n" xb "$rxb_opts" "$rxb_opts"
			[ "$(rxm "$models")" = e1000 ] && q=$qe || q=$qv
			fr=$(field "$x-rx" frames)
			read -r xr xm <<<"$(rate "$x-rx")"
			read -r qr qm <<<"$(rate "$q-rx")"
			row "rxbound tx->rx" "$models" "crossover $mode (vs QEMU -netdev $([ "$q" = "$qe" ] && echo socket || echo stream))" \
				"$size" "$xr" "$xm" "$(loss "$x-rx")" "$(exits "$x-tx" "$x-rx" "$fr")" "$qr" "$qm" "$(loss "$q-rx")" \
				"$(ratio "$xr" "$qr")"
			rxrows+=("| $mode | $(txm "$models")->$(rxm "$models") | $size | $xr | $xm | $(field "$x-rx" lost) ($(loss "$x-rx")) | $(vexits "$x-tx" "$fr") / $(vexits "$x-rx" "$fr") | $(per_k "$(sum_stat "$x-tx" doorbell_wakeups)" "$fr") | $(stat "$x-tx" xover_busy_peer_full) of $(stat "$x-tx" xover_batches) | $(per_k "$(stat "$x-rx" xover_doorbells_rung)" "$fr") | $(cpu_per_m "$fr" "$x-tx" "$x-rx") | $qer ($(loss "$qe-rx") lost) | $qvr ($(loss "$qv-rx") lost) | **$(xratio "$xr" "$qer")** | $(xratio "$xr" "$qvr") |")
		done
	done
	broker_down
	rxb_broker_cpu=$last_broker_cpu
}

# SECTIONS (default all): which of boot net rtt crossover rxbound to run.
sections=" ${SECTIONS:-boot net rtt crossover rxbound} "
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(now)
[[ $sections == *" boot "* ]] && boot_rows
[[ $sections == *" net "* ]] && net_rows
[[ $sections == *" rtt "* ]] && rtt_rows
[[ $sections == *" crossover "* ]] && crossover_rows
[[ $sections == *" rxbound "* ]] && rxbound_rows

header="| test | model | transport | size | xover | xover Mbit/s | xover loss | xover exits/frame | QEMU | QEMU Mbit/s | QEMU loss | xover/QEMU |"
sep="|---|---|---|---|---|---|---|---|---|---|---|---|"
{
	echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — $(uname -r), $(nproc) CPUs, TSC $tsc kHz, $($QEMU_REAL --version | head -1)"
	echo
	echo "Rates are frames/s at the receiver; rtt ratio is QEMU/xover (higher: xover faster); boot ratio QEMU/xover."
	echo
	echo "$header"
	echo "$sep"
	printf '%s\n' "${rows[@]}"
	echo
	if [ ${#xrows[@]} -gt 0 ]; then
		echo "Crossover detail (tx->rx; beside each crossover row, the same nettest pair over xover's udp: backend and QEMU -netdev socket stream; loss is at the receiver):"
		echo
		echo "| mode | tx->rx | size | frames/s | Mbit/s | loss | exits/frame tx / rx | bytes copied/frame | host CPU s/Mframe | xover udp frames/s | udp CPU s/Mframe | QEMU stream frames/s | QEMU CPU s/Mframe | frames/s vs QEMU | vs xover udp | CPU QEMU/xover |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		printf '%s\n' "${xrows[@]}"
		echo
	fi
	if [ ${#xrtt[@]} -gt 0 ]; then
		echo "Crossover round trip, role=ping -> role=echo, 64 B, $pings pings (microseconds, median / p99; each VM's exits per round trip):"
		echo
		echo "| mode | ping->echo | crossover median / p99 | exits/round trip ping / echo | bytes copied/frame | xover udp median / p99 | QEMU stream median / p99 | QEMU/xover median | udp/crossover median | two exits (role=exitcost medians) | median / two exits |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		printf '%s\n' "${xrtt[@]}"
		echo
	fi
	if [ ${#rxrows[@]} -gt 0 ]; then
		echo "Receiver-bound detail (tx->rx over the crossover; every guest, QEMU's too, runs \`$rxb_opts\`; loss is at the receiver; wake-ups, busy_peer_full and batches are the sender's counters, doorbells rung the receiver's; broker CPU $rxb_broker_cpu s):"
		echo
		echo "| mode | tx->rx | size | frames/s | Mbit/s | lost | exits/frame tx / rx | sender wake-ups/1000 frames | sender busy_peer_full of batches | receiver doorbells rung/1000 frames | host CPU s/Mframe | QEMU e1000 socket frames/s | QEMU virtio stream frames/s | vs QEMU e1000 socket | vs QEMU virtio stream |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		printf '%s\n' "${rxrows[@]}"
		echo
	fi
	if [ ${#xreps_seen[@]} -gt 0 ]; then
		echo "Each crossover pair above (crossover and receiver-bound rows) is the median of ${XREPS:-3} runs; every run's receiver frames/s, sorted:"
		echo
		printf -- '- %s\n' "${xreps_seen[@]}"
		echo
	fi
	echo "Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg); bench wall time $(elapsed "$t_start") s; broker CPU (whole crossover section) $broker_cpu s."
	echo
} >"$tmp/table.md"
cat "$tmp/table.md"
if [ -z "${NO_APPEND:-}" ]; then
	mkdir -p "$src/bench"
	[ -f "$src/bench/RESULTS.md" ] || printf '# Benchmark results\n\nAppended by scripts/bench.sh, newest last.\n\n' >"$src/bench/RESULTS.md"
	cat "$tmp/table.md" >>"$src/bench/RESULTS.md"
fi
