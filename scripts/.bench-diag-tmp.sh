#!/bin/bash
# The sound crossover's latency and host CPU, measured in one run on one
# host (only ratios mean anything across machines). Two QEMU VMs run the
# sndtest kernel on vhost-user-snd-pci, each card served by an
# `xover vhost-user --sound` back-end (QEMU 10 from scripts/qemu-backports.sh;
# KVM when it can, else TCG, said in the header): VM a plays 440 Hz
# (role=play), VM b records AUDIO_S seconds of it (role=record) through the
# cable, 48 kHz stereo S16, guest buffer 4 periods, once per period size in
# FRAMES.
#
# Order: a starts playing first (no wait_jack: until b's card registers,
# its periods go into nothing); b starts once a's stream runs and records
# with wait_jack=connected, so every period b captures was played while
# both cards ran. The measuring window starts when b prints the line that
# comes just before its PCM_START and lasts AUDIO_S - 1 s, inside the
# recording (one python3 process watches for the line and takes every
# sample: a shell loop that forks per poll lags by a second on a loaded
# host).
#
# Reported per period size:
#   backlog     b's counters at its device stop: cable_backlog_bytes /
#               cable_reads = the bytes waiting in the cable when b's card
#               read a period, averaged over b's whole recording; in ms (at
#               48 kHz stereo) and in periods. A period that waited k
#               periods' worth of sound waited (k - 1) periods plus the
#               phase between the two cards' clocks (0..1 period).
#   in cable    the time a byte spends in the cable, from a's card writing
#               its period to b's card reading it: a probe maps b's cable
#               (its memfd, read-only, through /proc/PID/fd) and samples
#               written - read about every 0.5 ms through the window; mean
#               bytes held / byte rate = mean time in the cable (Little's
#               law). Also the most it held, the samples by whole periods
#               held, and the mean of each second (the trend). PROBE=0
#               leaves b's cable alone.
#   counters    b: silence (nothing had arrived), skipped (more than the
#               cable's 100 ms waited), overruns (no guest buffer); a:
#               underruns (the guest had not refilled); both: late clock
#               periods (a stream timer that fired a period or more late).
#               All ~0 in a steady state. Over each card's whole session.
#   sndtest     a's play stats latency_max: the device's latency_bytes, what
#               a's guest still had queued ahead of its card when a request
#               came back (the guest's own buffering, not the cable); b's
#               record stats latency_max (the device reports 0 for capture).
#   CPU         utime+stime (/proc/PID/stat, every thread) of each xover
#               back-end over the window / the window's wall time: ms of
#               host CPU per second of audio (and, beside it, the same from
#               the threads' schedstat run time, in ns: clock ticks are
#               10 ms). The same two-VM run with backend=wav (a plays into
#               OUT.wav, b records IN.wav) is the card without the cable.
#               QEMU's CPU is not xover's: its own line, in no ratio.
# Prints Markdown tables and appends them, dated, to bench/RESULTS.md.
#
#   scripts/bench-sound.sh [BUILD_DIR]   AUDIO_S (10), FRAMES ("480 960"),
#                                        QEMU_SND, PROBE (1), NO_APPEND=1,
#                                        BACKEND_NICE (the back-ends' nice
#                                        value: -10 keeps their clocks on
#                                        time on a busy host; said in the
#                                        header; needs root)
set -u
cd "$(dirname "$0")/.."
export XOVER_BUILD=$(realpath "${1:-${BUILD_DIR:-build}}")
root=$PWD
. tests/integration/lib.sh
. tests/integration/vhost_user.inc
trap 'exit 130' INT TERM # exit through lib.sh's EXIT trap, which cleans up
t_start=$(now)
audio_s=${AUDIO_S:-10}
window_s=$((audio_s - 1))
frames_list=${FRAMES:-480 960}
probe=${PROBE:-1}
backend_nice=${BACKEND_NICE:-}
rate=48000
channels=2
bps=$((rate * channels * 2)) # bytes per second of audio
SNDTEST=$B/guests/sndtest.elf
[ -f "$SNDTEST" ] || skip "$SNDTEST not built"
[ "$audio_s" -ge 3 ] || skip "AUDIO_S=$audio_s: at least 3"
QS=${QEMU_SND:-$(scripts/qemu-backports.sh)} || skip "no QEMU with vhost-user-snd-pci (scripts/qemu-backports.sh)"
QS_ARGS=(-L "$(dirname "$QS")/../share/qemu")
export QEMU_MODULE_DIR=$(dirname "$QS")/../lib/x86_64-linux-gnu/qemu
"$QS" "${QS_ARGS[@]}" -device vhost-user-snd-pci,help 2>/dev/null | grep -q chardev ||
	skip "$QS has no vhost-user-snd-pci"
accel=TCG
[ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=KVM

# start NAME TIMEOUT_S command...: lib.sh's, but it also keeps the pid of
# `timeout` in $tmp/NAME.pid, which stop_all signals at exit (timeout
# passes the signal on to the command): whatever this script starts ends
# with it, not when its timeout runs out.
start() {
	local name=$1 secs=$2 i
	shift 2
	( timeout -k 5 "$secs" "$@" >"$tmp/$name.out" 2>&1 </dev/null &
	  echo $! >"$tmp/$name.pid"
	  wait $!
	  echo $? >"$tmp/$name.rc" ) &
	lib_pids+=($!)
	for i in $(seq 100); do [ -s "$tmp/$name.pid" ] && break; sleep 0.01; done
}
# stop NAME: ends a run that is still going (TERM, then KILL after 2 s).
stop() {
	local p i
	[ -s "$tmp/$1.pid" ] && [ ! -s "$tmp/$1.rc" ] || return 0
	p=$(cat "$tmp/$1.pid")
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 20); do [ -s "$tmp/$1.rc" ] && return 0; sleep 0.1; done
	kill -KILL $(pgrep -P "$p") "$p" 2>/dev/null
}
stop_all() {
	local f
	for f in "$tmp"/*.pid; do [ -f "$f" ] && stop "$(basename "$f" .pid)"; done
}
at_exit stop_all
# cmd_pid NAME: the pid of NAME's command (the child of its timeout).
cmd_pid() {
	local p i
	for i in $(seq 50); do
		p=$(pgrep -P "$(cat "$tmp/$1.pid")" | head -1)
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.02
	done
	fail "$1: no process"
}

# snd_backend NAME SOUND-SPEC: `xover vhost-user --sound` for VM NAME.
snd_backend() {
	start "$1" 600 "$X" vhost-user --socket "$tmp/$1.sock" --name "$1" --sound "$2" \
		--broker "$BROKER" --log-level info --stats=all
	wait_output "$1" "^vhost-user: .* serves $1's sound card" 10 || fail "$1: the vhost-user back-end did not listen"
}
# snd_vm RUN SOCKET "CMDLINE": sndtest under QEMU, its card served at SOCKET.
snd_vm() {
	# shellcheck disable=SC2086  # QEMU_ACCEL is several words
	start "$1" 180 "$QS" "${QS_ARGS[@]}" $QEMU_ACCEL -cpu qemu64 -m 128M \
		-object memory-backend-memfd,id=mem,size=128M,share=on -machine memory-backend=mem \
		-kernel "$SNDTEST" -append "$3 tsc_khz=$tsc" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 -display none -serial stdio -monitor none -no-reboot \
		-chardev "socket,id=s0,path=$2" -device vhost-user-snd-pci,chardev=s0
}
# sndtest_status RUN: PASS, FAIL(why) or the run's status.
sndtest_status() {
	local rc
	rc=$(wait_vm "$1" 60)
	if grep -aq '^sndtest: PASS' "$tmp/$1.out"; then echo PASS
	elif grep -aq '^sndtest: FAIL' "$tmp/$1.out"; then echo "FAIL ($(grep -a '^sndtest: FAIL' "$tmp/$1.out" | head -1 | cut -c16-70))"
	else echo "status $rc"; fi
}
# sfield RUN KEY: KEY=VALUE from sndtest's stats line.
sfield() { grep -a '^sndtest: [a-z]* stats ' "$tmp/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# window.py OUT MARKER SECS NAME=PID|@PIDFILE,... CABLE_PID|- PERIOD_BYTES:
# started before b's VM, waits for MARKER (a regex) in OUT, then for SECS takes the CPU of each PID at both
# ends (utime+stime of every thread, in clock ticks; and the threads'
# schedstat run time, in ns) and, given the receiving back-end's pid, maps
# its cable read-only and samples the backlog (written - read; CableHeader:
# written at offset 64, read at 128) about every 0.5 ms. key=value lines.
cat >"$tmp/window.py" <<'PYEOF'
import glob, mmap, os, re, struct, sys, time
out, marker, secs, pids, cable_pid, pb = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
pids = dict(kv.split("=") for kv in pids.split(","))
deadline = time.monotonic() + 120
pat = re.compile(marker.encode(), re.M)
while not pat.search(open(out, "rb").read()):
    if time.monotonic() > deadline:
        print("window_error=no_marker")
        sys.exit(1)
    time.sleep(0.005)


def child_of(tpid):
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1] == tpid:
                return d
        except (OSError, IndexError):
            pass
    return None


# NAME=PID, or NAME=@FILE: the child of the process whose pid FILE holds
# (a run started after this script: sndtest's VM under its timeout).
pids = {k: (child_of(open(v[1:]).read().strip()) if v.startswith("@") else v) for k, v in pids.items()}


def cpu(pid):
    """utime+stime of the whole process (ticks), schedstat run time of its threads (ns)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    ns = 0
    for t in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            ns += int(open(t).read().split()[0])
        except (OSError, ValueError):
            pass  # a thread that just ended
    return int(f[11]) + int(f[12]), ns


m = None
if cable_pid != "-":
    for fd in os.listdir(f"/proc/{cable_pid}/fd"):
        try:
            if ".snd0.cable" in os.readlink(f"/proc/{cable_pid}/fd/{fd}"):
                m = mmap.mmap(os.open(f"/proc/{cable_pid}/fd/{fd}", os.O_RDONLY), 4096, mmap.MAP_SHARED, mmap.PROT_READ)
                break
        except OSError:
            pass
    if m is None or struct.unpack_from("<I", m, 0)[0] != 0x444E5358:
        print("probe_error=no_cable")
        m = None
c0 = {k: cpu(v) for k, v in pids.items()}
t0 = time.monotonic()
end = t0 + secs
u64 = struct.Struct("<Q")
n = total = peak = 0
hist, per_s = {}, {}
while True:
    t = time.monotonic()
    if t >= end:
        break
    if m is None:
        time.sleep(min(0.05, end - t))
        continue
    r1 = u64.unpack_from(m, 128)[0]
    w = u64.unpack_from(m, 64)[0]
    r2 = u64.unpack_from(m, 128)[0]
    if r1 != r2 or w < r1:
        continue
    b = w - r1
    n += 1
    total += b
    peak = max(peak, b)
    hist[round(b / pb)] = hist.get(round(b / pb), 0) + 1
    s = per_s.setdefault(int(t - t0), [0, 0])
    s[0] += b
    s[1] += 1
    time.sleep(0.0005)
c1 = {k: cpu(v) for k, v in pids.items()}
win = time.monotonic() - t0
hz = os.sysconf("SC_CLK_TCK")
print(f"win={win:.3f}")
for k in pids:
    if c0[k] and c1[k]:
        print(f"cpu_{k}={(c1[k][0] - c0[k][0]) * 1000 / hz / win:.2f}")
        print(f"run_{k}={(c1[k][1] - c0[k][1]) / 1e6 / win:.2f}")
    else:
        print(f"cpu_{k}=gone")
        print(f"run_{k}=gone")
if n:
    print(f"samples={n}")
    print(f"mean_bytes={total / n:.1f}")
    print(f"max_bytes={peak}")
    print("hist=" + ",".join(f"{k}:{v}" for k, v in sorted(hist.items())))
    print("per_s=" + ",".join(f"{s[0] / s[1]:.0f}" for _, s in sorted(per_s.items())))
PYEOF

python3 tests/guests/sndtest/wavtool.py sine --rate $rate --channels $channels --freq 1000 \
	--seconds $((audio_s + 5)) "$tmp/in.wav" >/dev/null
vu_broker
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# pair KIND FRAMES: one run; KIND cable (a -> b through the crossover) or
# wav (a -> OUT.wav; IN.wav -> b). Results in $tmp/KIND-FRAMES.res, key=value.
pair() {
	local kind=$1 f=$2 a=$1a$2 b=$1b$2 pb nrec nplay marker brec
	pb=$((f * channels * 2))
	nrec=$((audio_s * rate / f))
	nplay=$(((audio_s + 4) * rate / f)) # b boots while a plays: a outlasts b's recording
	if [ "$kind" = cable ]; then
		snd_backend "$a" "virtio-snd,crossover=$b"
		snd_backend "$b" "virtio-snd,crossover=$a"
		marker="^sndtest: wait_jack: jack 1 connected"
		brec="wait_jack=connected expect=440"
	else
		snd_backend "$a" "virtio-snd,backend=wav:$tmp/$a.wav"
		snd_backend "$b" "virtio-snd,backend=wav:$tmp/$b-unused.wav,in=$tmp/in.wav"
		marker="^sndtest: chmap 1 input"
		brec="expect=1000"
	fi
	if [ -n "$backend_nice" ]; then renice -n "$backend_nice" -p "$(cmd_pid "$a")" "$(cmd_pid "$b")" >/dev/null || fail "renice"; fi
	snd_vm "$a-vm" "$tmp/$a.sock" "role=play freq=440 periods=$nplay period_frames=$f"
	wait_output "$a-vm" "^sndtest: chmap 1 input" 60 || fail "$a-vm: sndtest did not start"
	sleep 0.3 # its stream runs
	# The window's watcher runs before b's VM starts: it sees b's line
	# within 5 ms of its being printed.
	local pids cable_pid=- wpid
	pids="a=$(cmd_pid "$a"),b=$(cmd_pid "$b"),qa=$(cmd_pid "$a-vm"),qb=@$tmp/$b-vm.pid,broker=$(cmd_pid broker)"
	[ "$kind" = cable ] && [ "$probe" = 1 ] && cable_pid=$(cmd_pid "$b")
	: >"$tmp/$b-vm.out"
	python3 "$tmp/window.py" "$tmp/$b-vm.out" "$marker" "$window_s" "$pids" "$cable_pid" "$pb" >"$tmp/$kind-$f.win" &
	wpid=$!
	lib_pids+=($wpid)
	sleep 0.5 # python3 is up
	snd_vm "$b-vm" "$tmp/$b.sock" "role=record periods=$nrec period_frames=$f $brec"
	[ "$kind" = cable ] && { wait_output "$b-vm" "$marker" 60; python3 /tmp/sndbench-explore/diag.py "$cable_pid" 9 >"$tmp/diag-$f.log"; }
	wait $wpid
	local sa sb k
	sb=$(sndtest_status "$b-vm")
	sa=$(sndtest_status "$a-vm")
	wait_stops "$a" 1
	wait_stops "$b" 1
	{
		echo "pb=$pb"
		echo "status_a=$sa"
		echo "status_b=$sb"
		cat "$tmp/$kind-$f.win"
		for k in underruns cable_sent_bytes cable_dropped_bytes cable_unlinked_bytes clock_late_periods clock_skipped_periods; do
			echo "a_$k=$(last_stat "$a" "$k")"
		done
		for k in overruns capture_periods cable_received_bytes cable_silence_bytes cable_skipped_bytes \
			cable_backlog_bytes cable_reads clock_late_periods clock_skipped_periods; do
			echo "b_$k=$(last_stat "$b" "$k")"
		done
		echo "play_latency_max=$(sfield "$a-vm" latency_max)"
		echo "play_starved=$(sfield "$a-vm" starved)"
		echo "rec_latency_max=$(sfield "$b-vm" latency_max)"
		echo "rec_starved=$(sfield "$b-vm" starved)"
		echo "silent_periods=$(sfield "$b-vm" silent_periods)"
		echo "rec_elapsed_ms=$(sfield "$b-vm" elapsed_ms)"
	} >"$tmp/$kind-$f.res"
	stop "$a"
	stop "$b"
}
# res KIND FRAMES KEY: a value from pair's results.
res() { sed -n "s/^$3=//p" "$tmp/$1-$2.res" | head -1; }
calc() { awk "BEGIN { $1 }"; }
# ratio EXPR EXPR: "1.23x", or n/a.
ratio() { calc "a = $1; b = $2; if (b > 0) printf \"%.2fx\", a / b; else print \"n/a\""; }

for f in $frames_list; do
	pair cable "$f"
	pair wav "$f"
done

# ---------------------------------------------------------------- tables
lat="| period | backlog at b's reads, avg (counters) | in cable, mean (probe) | most in cable (probe) | probe samples by whole periods held | b silence / skipped periods | b overruns / a underruns | late clock periods a / b | sndtest latency_max: a's play / b's record | sndtest a / b |
|---|---|---|---|---|---|---|---|---|---|"
cpu="| period | xover a (plays into the cable) | xover b (records from it) | a + b | WAV a (plays into OUT.wav) | WAV b (records IN.wav) | WAV a + b | cable / WAV (a + b) | WAV underruns / overruns, late clock periods a / b |
|---|---|---|---|---|---|---|---|---|"
notes=""
for f in $frames_list; do
	pb=$(res cable "$f" pb)
	pms=$(calc "printf \"%g\", $f * 1000 / $rate")
	reads=$(res cable "$f" b_cable_reads) backlog=$(res cable "$f" b_cable_backlog_bytes)
	avg=$(calc "if (\"$reads\" + 0 > 0) { b = $backlog / $reads; printf \"%.1f ms = %.2f periods\", b * 1000 / $bps, b / $pb } else print \"n/a\"")
	if [ -n "$(res cable "$f" mean_bytes)" ]; then
		pm=$(calc "b = $(res cable "$f" mean_bytes); printf \"%.1f ms = %.2f periods\", b * 1000 / $bps, b / $pb")
		mx=$(calc "b = $(res cable "$f" max_bytes); printf \"%.0f ms = %.0f periods\", b * 1000 / $bps, b / $pb")
		hist="$(res cable "$f" hist) (of $(res cable "$f" samples))"
		trend=$(res cable "$f" per_s | tr ',' '\n' | awk -v k=$bps '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 * 1000 / k }')
		notes="$notes
- $f frames: the probe's mean for each second of the window, ms in the cable: $trend."
	else
		pm="not probed" mx="-" hist="-"
	fi
	sil=$(calc "printf \"%d / %d\", $(res cable "$f" b_cable_silence_bytes) / $pb, $(res cable "$f" b_cable_skipped_bytes) / $pb")
	xr="$(res cable "$f" b_overruns) / $(res cable "$f" a_underruns)"
	late="$(res cable "$f" a_clock_late_periods) / $(res cable "$f" b_clock_late_periods)"
	plm=$(res cable "$f" play_latency_max)
	slat=$(calc "printf \"%d B = %.0f periods / %s\", \"$plm\" + 0, (\"$plm\" + 0) / $pb, \"$(res cable "$f" rec_latency_max)\"")
	lat="$lat
| $f frames ($pms ms) | $avg | $pm | $mx | $hist | $sil | $xr | $late | $slat | $(res cable "$f" status_a) / $(res cable "$f" status_b) |"
	ca=$(res cable "$f" cpu_a) cb=$(res cable "$f" cpu_b) wa=$(res wav "$f" cpu_a) wb=$(res wav "$f" cpu_b)
	both() { echo "$1 ($2)"; }
	cpu="$cpu
| $f frames | $(both "$ca" "$(res cable "$f" run_a)") | $(both "$cb" "$(res cable "$f" run_b)") | $(calc "printf \"%.2f (%.2f)\", $ca + $cb, $(res cable "$f" run_a) + $(res cable "$f" run_b)") | $(both "$wa" "$(res wav "$f" run_a)") | $(both "$wb" "$(res wav "$f" run_b)") | $(calc "printf \"%.2f (%.2f)\", $wa + $wb, $(res wav "$f" run_a) + $(res wav "$f" run_b)") | $(ratio "$ca + $cb" "$wa + $wb") ($(ratio "$(res cable "$f" run_a) + $(res cable "$f" run_b)" "$(res wav "$f" run_a) + $(res wav "$f" run_b)")) | $(res wav "$f" a_underruns) / $(res wav "$f" b_overruns), $(res wav "$f" a_clock_late_periods) / $(res wav "$f" b_clock_late_periods) |"
	notes="$notes
- $f frames, not xover: QEMU a / b $(res cable "$f" cpu_qa) / $(res cable "$f" cpu_qb) ms per s with the cable, $(res wav "$f" cpu_qa) / $(res wav "$f" cpu_qb) with WAV ($accel, each guest polling its queues); the broker $(res cable "$f" cpu_broker). Windows $(res cable "$f" win) s (cable) and $(res wav "$f" win) s (WAV)."
done
header="### $(date -u '+%Y-%m-%d %H:%M UTC') — sound crossover (scripts/bench-sound.sh${backend_nice:+, BACKEND_NICE=$backend_nice}), $(uname -r), $(nproc) CPUs, QEMU $accel: $("$QS" --version | head -1)"
body="Two QEMU VMs (sndtest on vhost-user-snd-pci, each card an \`xover vhost-user --sound\` back-end), 48 kHz stereo S16, guest buffer 4 periods; a plays 440 Hz, b records ${audio_s} s of it through the cable, started once a's stream runs; measured over ${window_s} s of b's recording.

Latency of the cable alone, a's card writing a period → b's card reading it (not the guests' own buffering):

$lat

Host CPU per second of audio, each xover back-end: ms of utime+stime per s of the window (in brackets: the threads' schedstat run time, ns-exact). The WAV columns are the same two-VM run with backend=wav instead of the cable:

$cpu
$notes
- Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg); bench wall time $(elapsed "$t_start") s."
echo "$header"
echo
echo "$body"
if [ -z "${NO_APPEND:-}" ]; then
	{
		echo
		echo "$header"
		echo
		echo "$body"
	} >>"$root/bench/RESULTS.md"
fi
