#!/bin/bash
# xover vs QEMU, measured in the same run on the same host (only ratios
# mean anything across machines). Prints one Markdown table and appends it,
# dated, to bench/RESULTS.md.
#
#   scripts/bench.sh [BUILD_DIR]        (a Release build; default build/)
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
# Environment: RUNS (5), COUNT_SMALL (50000), COUNT_LARGE (20000),
#   PINGS (2000), QEMU, NO_APPEND=1 (print only).
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
export XOVER_BUILD=$(cd "${1:-$src/build}" && pwd)
. "$src/tests/integration/lib.sh"
need_xover
need_qemu
HELLO=$B/guests/hello.elf
runs=${RUNS:-5}
count_small=${COUNT_SMALL:-50000}
count_large=${COUNT_LARGE:-20000}
pings=${PINGS:-2000}
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
		measure "$QEMU" -M microvm -enable-kvm -cpu qemu64 -m 128M -kernel "$HELLO" -append bench \
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
nic() { [ "$1" = e1000 ] && echo e1000 || echo virtio-net; }

# rate NAME: "frames/s Mbit/s" from the receiver's RESULT line.
rate() {
	awk -v f="$(field "$1" frames)" -v b="$(field "$1" bytes)" -v c="$(field "$1" cycles)" -v k="$tsc" \
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
	xover_vm "$name-rx" "role=rx count=$n timeout_ms=2000 start_timeout_ms=60000 tsc_khz=$tsc" "$(nic "$model"),mac=$mac_a,backend=$ba"
	# A stream listener's link comes up with the connection: just let it bind.
	if [ "$transport" = udp ]; then wait_output "$name-rx" "link=up" 60; else sleep 0.5; fi
	xover_vm "$name-tx" "role=tx count=$n size=$size dst=$mac_a timeout_ms=2000 tsc_khz=$tsc" \
		"$(nic "$model"),mac=$mac_b,backend=$bb"
	wait_vm "$name-tx" >/dev/null; wait_vm "$name-rx" >/dev/null
}
q_pair() {
	local model=$1 transport=$2 size=$3 n=$4 name=q-$1-$2-$3 port na nb
	port=$(free_port 2) || return
	if [ "$transport" = udp ]; then
		na="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$port,remote.type=inet,remote.host=127.0.0.1,remote.port=$((port + 1))"
		nb="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$((port + 1)),remote.type=inet,remote.host=127.0.0.1,remote.port=$port"
	else
		na="socket,id=n0,listen=127.0.0.1:$port"; nb="socket,id=n0,connect=127.0.0.1:$port"
	fi
	qemu_vm "$name-rx" "nic=$model role=rx count=$n timeout_ms=2000 start_timeout_ms=60000 tsc_khz=$tsc" "$na" "$(qemu_device "$model" "$mac_a")"
	wait_output "$name-rx" "link=up" 60
	sleep 1 # QEMU's e1000 RX stalls on frames that arrive right after it is enabled
	qemu_vm "$name-tx" "nic=$model role=tx count=$n size=$size dst=$mac_a timeout_ms=2000 tsc_khz=$tsc" \
		"$nb" "$(qemu_device "$model" "$mac_b")"
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

# rtt MODEL: ping-pong over udp, xover pair and QEMU pair.
rtt_rows() {
	local model port x=x-rtt q=q-rtt xs qs
	for model in e1000 virtio; do
		port=$(free_port 2) || return
		xover_vm "$x-$model-echo" "role=echo count=$pings tsc_khz=$tsc" \
			"$(nic "$model"),mac=$mac_a,backend=udp:127.0.0.1:$port@127.0.0.1:$((port + 1))"
		xover_vm "$x-$model-ping" "role=ping count=$pings size=64 dst=$mac_a tsc_khz=$tsc" \
			"$(nic "$model"),mac=$mac_b,backend=udp:127.0.0.1:$((port + 1))@127.0.0.1:$port"
		wait_vm "$x-$model-ping" >/dev/null; wait_vm "$x-$model-echo" >/dev/null
		port=$(free_port 2) || return
		qemu_vm "$q-$model-echo" "nic=$model role=echo count=$pings tsc_khz=$tsc" \
			"dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$port,remote.type=inet,remote.host=127.0.0.1,remote.port=$((port + 1))" \
			"$(qemu_device "$model" "$mac_a")"
		qemu_vm "$q-$model-ping" "nic=$model role=ping count=$pings size=64 dst=$mac_a tsc_khz=$tsc" \
			"dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$((port + 1)),remote.type=inet,remote.host=127.0.0.1,remote.port=$port" \
			"$(qemu_device "$model" "$mac_b")"
		wait_vm "$q-$model-ping" >/dev/null; wait_vm "$q-$model-echo" >/dev/null
		us() { awk -v c="$(field "$1" "$2")" -v k="$tsc" 'BEGIN { if (c + 0 > 0) printf "%.1f\n", c / k * 1000; else print "n/a" }'; }
		xs="$(us "$x-$model-ping" median_cycles) / $(us "$x-$model-ping" p99_cycles) us"
		qs="$(us "$q-$model-ping" median_cycles) / $(us "$q-$model-ping" p99_cycles) us"
		row "rtt median / p99" "$model" "udp" "64" "$xs" "-" "-" \
			"$(exits "$x-$model-ping" "$x-$model-echo" "$((2 * $(field "$x-$model-ping" frames || echo 0)))")" \
			"$qs" "-" "-" "$(ratio "$(us "$q-$model-ping" median_cycles)" "$(us "$x-$model-ping" median_cycles)")"
	done
}

# Crossover rows go here (the crossover engineer's): run a crossover pair
# (xover up / --broker) with the same nettest roles and add rows with
#   row "crossover tx->rx" MODEL crossover SIZE FRAMES/S MBIT/S LOSS EXITS/FRAME - - - RATIO
# using rate/loss/exits above; compare against the udp/stream rows.
crossover_rows() { :; }

boot_rows
net_rows
rtt_rows
crossover_rows

header="| test | model | transport | size | xover | xover Mbit/s | xover loss | xover exits/frame | QEMU | QEMU Mbit/s | QEMU loss | xover/QEMU |"
sep="|---|---|---|---|---|---|---|---|---|---|---|---|"
{
	echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — $(uname -r), $(nproc) CPUs, TSC $tsc kHz, $($QEMU --version | head -1)"
	echo
	echo "Rates are frames/s at the receiver; rtt ratio is QEMU/xover (higher: xover faster); boot ratio QEMU/xover."
	echo
	echo "$header"
	echo "$sep"
	printf '%s\n' "${rows[@]}"
	echo
} >"$tmp/table.md"
cat "$tmp/table.md"
if [ -z "${NO_APPEND:-}" ]; then
	mkdir -p "$src/bench"
	[ -f "$src/bench/RESULTS.md" ] || printf '# Benchmark results\n\nAppended by scripts/bench.sh, newest last.\n\n' >"$src/bench/RESULTS.md"
	cat "$tmp/table.md" >>"$src/bench/RESULTS.md"
fi
