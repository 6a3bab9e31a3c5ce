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
# Order: a's guest waits for its headphone jack (wait_jack=connected); the
# link comes up when b's card starts, and a plays from then on. b's guest
# is then still setting its card up, so b's first capture comes after a's
# first periods (b's leading silence in the table says if not), and a
# plays AUDIO_S + 5 s, past b's recording. The measuring window starts when
# b prints the line that comes just before its PCM_START and lasts
# AUDIO_S - 1 s, inside the recording. One python3 process, started before
# the VMs, watches for that line and takes every sample (a shell loop that
# forks per poll lags by a second on a loaded host).
#
# Reported per period size:
#   backlog     b's counters at its device stop: cable_backlog_bytes /
#               cable_reads = the bytes waiting in the cable when b's card
#               read a period, averaged over b's whole recording; in ms (at
#               48 kHz stereo) and in periods. A read that found k periods
#               took the oldest, written (k - 1) periods plus the phase
#               between the two cards' clocks (0..1 period) earlier.
#   write→read  each period's time in the cable, from a's card writing it
#               to b's card reading it: a probe maps b's cable (its memfd,
#               read-only, through /proc/PID/fd) and polls its two counts
#               (written, read) every ~0.2 ms through the window, noting
#               when each moves; a read's time minus the time of the write
#               that brought its bytes. Mean, median, p95 and max; the mean
#               of each second (the trend: does it drift?); the probe's own
#               poll gaps (its resolution). PROBE=0 leaves b's cable alone.
#   counters    b: silence (nothing had arrived; "leading": before the
#               first sound, sndtest's count), skipped (more than the
#               cable's 100 ms waited), overruns (no guest buffer); a:
#               underruns (the guest had not refilled); both: late clock
#               periods (a stream timer that fired a period or more late)
#               and, in brackets, skipped ones (more than 8 periods late:
#               not caught up).
#               All ~0 in a steady state. Over each card's whole session.
#   sndtest     a's play stats latency_max: the device's latency_bytes, what
#               a's guest still had queued ahead of its card when a request
#               came back (the guest's own buffering, not the cable); b's
#               record stats latency_max (for capture: the rest of the period the card
#               had captured past the buffer).
#   CPU         utime+stime (/proc/PID/stat, every thread) of each xover
#               back-end over the window / the window's wall time: ms of
#               host CPU per second of audio (in brackets the same from the
#               threads' schedstat run time, ns-exact: clock ticks are
#               10 ms). The same two-VM run with backend=wav (a plays into
#               OUT.wav, b records IN.wav) is the card without the cable.
#               QEMU's CPU is not xover's: a line of its own, in no ratio.
# Prints Markdown tables and appends them, dated, to bench/RESULTS.md.
#
#   scripts/bench-sound.sh [BUILD_DIR]   AUDIO_S (10), FRAMES ("480 960"),
#                                        QEMU_SND, PROBE (1), NO_APPEND=1,
#                                        BACKEND_NICE (renice the back-ends,
#                                        e.g. -10 on a busy host; said in
#                                        the header; needs root)
set -u
cd "$(dirname "$0")/.." || exit 1
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
[ -f "$B/guests/sndtest.elf" ] || skip "$B/guests/sndtest.elf not built"
# Copies: a rebuild of BUILD_DIR during the run changes nothing in it.
mkdir "$tmp/bin"
cp "$X" "$B/guests/sndtest.elf" "$tmp/bin/" || fail "copying xover and sndtest.elf"
X=$tmp/bin/xover
SNDTEST=$tmp/bin/sndtest.elf
[ "$audio_s" -ge 3 ] || skip "AUDIO_S=$audio_s: at least 3"
QS=${QEMU_SND:-$(scripts/qemu-backports.sh)} || skip "no QEMU with vhost-user-snd-pci (scripts/qemu-backports.sh)"
SND_VM_TIMEOUT=180
. tests/integration/vhost_user_sound.inc
# The interpreter itself, not a wrapper (pyenv's shims are shell scripts):
# the window's watcher must start fast.
PY=$(python3 -c 'import sys; print(sys.executable)') || skip "no python3"
accel=TCG
[ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=KVM

# start NAME TIMEOUT_S command...: lib.sh's, but it also keeps the pid of
# `timeout` in $tmp/NAME.pid, which stop_all signals at exit (timeout
# passes the signal on to the command): whatever this script starts ends
# with it, not when its timeout runs out.
start() {
	local name=$1 secs=$2
	shift 2
	( timeout -k 5 "$secs" "$@" >"$tmp/$name.out" 2>&1 </dev/null &
	  echo $! >"$tmp/$name.pid"
	  wait $!
	  echo $? >"$tmp/$name.rc" ) &
	lib_pids+=($!)
	for _ in $(seq 100); do [ -s "$tmp/$name.pid" ] && break; sleep 0.01; done
}
# stop NAME: ends a run that is still going (TERM, then KILL after 2 s).
stop() {
	local p
	[ -s "$tmp/$1.pid" ] && [ ! -s "$tmp/$1.rc" ] || return 0
	p=$(cat "$tmp/$1.pid")
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 20); do [ -s "$tmp/$1.rc" ] && return 0; sleep 0.1; done
	kill -KILL $(pgrep -P "$p") "$p" 2>/dev/null
}
stop_all() {
	local f
	for f in "$tmp"/*.pid; do [ -f "$f" ] && stop "$(basename "$f" .pid)"; done
}
at_exit stop_all
# cmd_pid NAME: the pid of NAME's command (the child of its timeout).
cmd_pid() {
	local p
	for _ in $(seq 50); do
		p=$(pgrep -P "$(cat "$tmp/$1.pid")" | head -1)
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.02
	done
	fail "$1: no process"
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
# started before b's VM, waits for MARKER (a regex) in OUT, then for SECS
# takes the CPU of each PID at both ends (utime+stime of every thread, in
# clock ticks; and the threads' schedstat run time, in ns) and, given the
# receiving back-end's pid, maps its cable read-only and polls its two
# counts (CableHeader: written at offset 64, read at 128) every ~0.2 ms,
# noting when each moves: each period's write -> read time. key=value lines.
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
self0 = sum(os.times()[:2])
t0 = time.monotonic()
end = t0 + secs
u64 = struct.Struct("<Q")
writes, reads, gaps = [], [], []  # (time, written), (time, read), time between samples
peak, last_w, last_r, last_t = 0, None, None, None
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
    if last_t is not None:
        gaps.append(t - last_t)
    last_t = t
    peak = max(peak, w - r1)
    if w != last_w:
        writes.append((t, w))
        last_w = w
    if r1 != last_r:
        reads.append((t, r1))
        last_r = r1
    time.sleep(0.0002)
c1 = {k: cpu(v) for k, v in pids.items()}
win = time.monotonic() - t0
hz = os.sysconf("SC_CLK_TCK")
print(f"win={win:.3f}")
print(f"cpu_probe={(sum(os.times()[:2]) - self0) * 1000 / win:.0f}")
for k in pids:
    if c0[k] and c1[k]:
        print(f"cpu_{k}={(c1[k][0] - c0[k][0]) * 1000 / hz / win:.2f}")
        print(f"run_{k}={(c1[k][1] - c0[k][1]) / 1e6 / win:.2f}")
    else:
        print(f"cpu_{k}=gone")
        print(f"run_{k}=gone")
# Each read that moved the read count to R took bytes up to R: they were
# written by the first write that moved the written count to R or past
# it. Its latency: the read's time - that write's time (within the gaps
# between samples). The first write seen is only a start: skipped.
lat, per_s, i = [], {}, 1
for t, r in reads[1:]:
    if not writes or r <= writes[0][1]:
        continue  # written before the window
    while i < len(writes) and writes[i][1] < r:
        i += 1
    if i >= len(writes) or writes[i][0] > t:
        continue
    lat.append(t - writes[i][0])
    per_s.setdefault(int(t - t0), []).append(t - writes[i][0])
if lat:
    q = sorted(lat)
    ms = lambda x: f"{x * 1000:.2f}"
    print(f"lat_n={len(q)}")
    print(f"lat_mean={ms(sum(q) / len(q))}")
    print(f"lat_median={ms(q[len(q) // 2])}")
    print(f"lat_p95={ms(q[int(len(q) * 0.95)])}")
    print(f"lat_max={ms(q[-1])}")
    print(f"max_bytes={peak}")
    print("per_s=" + ",".join(ms(sum(v) / len(v)) for _, v in sorted(per_s.items())))
    g = sorted(gaps)
    print(f"gap_p50={ms(g[len(g) // 2])}")
    print(f"gap_p99={ms(g[int(len(g) * 0.99)])}")
    print(f"gap_max={ms(g[-1])}")
PYEOF

"$PY" tests/guests/sndtest/wavtool.py sine --rate $rate --channels $channels --freq 1000 \
	--seconds $((audio_s + 5)) "$tmp/in.wav" >/dev/null
vu_broker
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# pair KIND FRAMES: one run; KIND cable (a -> b through the crossover) or
# wav (a -> OUT.wav; IN.wav -> b). Results in $tmp/KIND-FRAMES.res, key=value.
pair() {
	local kind=$1 f=$2 a=$1a$2 b=$1b$2 pb nrec nplay marker brec
	pb=$((f * channels * 2))
	nrec=$((audio_s * rate / f))
	nplay=$(((audio_s + 5) * rate / f)) # from a's start: b boots meanwhile, and a outlasts b's recording
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
	# The window's watcher runs before the VMs start: it sees b's line
	# within 5 ms of its being printed (the VMs' pids it finds then).
	local pids cable_pid=- wpid
	pids="a=$(cmd_pid "$a"),b=$(cmd_pid "$b"),qa=@$tmp/$a-vm.pid,qb=@$tmp/$b-vm.pid,broker=$(cmd_pid broker)"
	[ "$kind" = cable ] && [ "$probe" = 1 ] && cable_pid=$(cmd_pid "$b")
	: >"$tmp/$b-vm.out"
	"$PY" "$tmp/window.py" "$tmp/$b-vm.out" "$marker" "$window_s" "$pids" "$cable_pid" "$pb" >"$tmp/$kind-$f.win" &
	wpid=$!
	lib_pids+=("$wpid")
	# a plays from the link's coming up (wait_jack; with WAV at once), which
	# is when b's card starts: b's guest is then still setting up its card,
	# so b's first capture comes after a's first periods (b's leading
	# silence in the table says if not).
	snd_vm "$a-vm" "$tmp/$a.sock" "role=play freq=440 periods=$nplay period_frames=$f wait_jack=connected"
	wait_output "$a-vm" "^sndtest: chmap 1 input" 60 || fail "$a-vm: sndtest did not start"
	snd_vm "$b-vm" "$tmp/$b.sock" "role=record periods=$nrec period_frames=$f $brec"
	wait $wpid
	grep -q '^win=' "$tmp/$kind-$f.win" || fail "$kind, $f frames: no measuring window ($(tr '\n' ' ' <"$tmp/$kind-$f.win"))"
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
		echo "leading_silence=$(sfield "$b-vm" skipped)"
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
lat="| period | backlog at b's reads, avg (counters) | write → read per period, mean / median / p95 / max (probe) | first s → last s, mean (probe) | b silence / skipped periods | b overruns / a underruns | late (skipped) clock periods a / b | sndtest latency_max: a's play / b's record | sndtest a / b |
|---|---|---|---|---|---|---|---|---|"
cpu="| period | xover a (plays into the cable) | xover b (records from it) | a + b | WAV a (plays into OUT.wav) | WAV b (records IN.wav) | WAV a + b | cable / WAV (a + b) | WAV underruns / overruns, late (skipped) clock periods a / b |
|---|---|---|---|---|---|---|---|---|"
notes=""
for f in $frames_list; do
	pb=$(res cable "$f" pb)
	pms=$(calc "printf \"%g\", $f * 1000 / $rate")
	reads=$(res cable "$f" b_cable_reads) backlog=$(res cable "$f" b_cable_backlog_bytes)
	avg=$(calc "if (\"$reads\" + 0 > 0) { b = $backlog / $reads; printf \"%.1f ms = %.2f periods\", b * 1000 / $bps, b / $pb } else print \"n/a\"")
	if [ -n "$(res cable "$f" lat_n)" ]; then
		probe_lat=$(calc "printf \"%.1f / %.1f / %.1f / %.1f ms = %.2f / %.2f / %.2f / %.2f periods\", \
			$(res cable "$f" lat_mean), $(res cable "$f" lat_median), $(res cable "$f" lat_p95), $(res cable "$f" lat_max), \
			$(res cable "$f" lat_mean) / $pms, $(res cable "$f" lat_median) / $pms, $(res cable "$f" lat_p95) / $pms, $(res cable "$f" lat_max) / $pms")
		trend=$(res cable "$f" per_s | tr ',' ' ')
		fl="$(echo "$trend" | awk '{ printf "%.1f → %.1f ms", $1, $NF }')"
		notes="$notes
- $f frames, the probe: $(res cable "$f" lat_n) periods timed; mean write → read of each second of the window, ms: $trend; most in the cable at once $(calc "printf \"%.0f ms\", $(res cable "$f" max_bytes) * 1000 / $bps"); its polls $(res cable "$f" gap_p50) ms apart (median), $(res cable "$f" gap_p99) ms at the 99th percentile, $(res cable "$f" gap_max) ms at most (the timing's resolution), costing it $(res cable "$f" cpu_probe) ms of CPU per s."
	else
		probe_lat="not probed" fl="-"
	fi
	sil=$(calc "printf \"%d (%d leading) / %d\", $(res cable "$f" b_cable_silence_bytes) / $pb, $(res cable "$f" leading_silence), $(res cable "$f" b_cable_skipped_bytes) / $pb")
	xr="$(res cable "$f" b_overruns) / $(res cable "$f" a_underruns)"
	late="$(res cable "$f" a_clock_late_periods) ($(res cable "$f" a_clock_skipped_periods)) / $(res cable "$f" b_clock_late_periods) ($(res cable "$f" b_clock_skipped_periods))"
	plm=$(res cable "$f" play_latency_max)
	slat=$(calc "printf \"%d B = %.0f periods / %s\", \"$plm\" + 0, (\"$plm\" + 0) / $pb, \"$(res cable "$f" rec_latency_max)\"")
	lat="$lat
| $f frames ($pms ms) | $avg | $probe_lat | $fl | $sil | $xr | $late | $slat | $(res cable "$f" status_a) / $(res cable "$f" status_b) |"
	ca=$(res cable "$f" cpu_a) cb=$(res cable "$f" cpu_b) wa=$(res wav "$f" cpu_a) wb=$(res wav "$f" cpu_b)
	ra=$(res cable "$f" run_a) rb=$(res cable "$f" run_b) va=$(res wav "$f" run_a) vb=$(res wav "$f" run_b)
	cpu="$cpu
| $f frames | $ca ($ra) | $cb ($rb) | $(calc "printf \"%.2f (%.2f)\", $ca + $cb, $ra + $rb") | $wa ($va) | $wb ($vb) | $(calc "printf \"%.2f (%.2f)\", $wa + $wb, $va + $vb") | $(ratio "$ca + $cb" "$wa + $wb") ($(ratio "$ra + $rb" "$va + $vb")) | $(res wav "$f" a_underruns) / $(res wav "$f" b_overruns), $(res wav "$f" a_clock_late_periods) ($(res wav "$f" a_clock_skipped_periods)) / $(res wav "$f" b_clock_late_periods) ($(res wav "$f" b_clock_skipped_periods)) |"
	notes="$notes
- $f frames, not xover: QEMU a / b $(res cable "$f" cpu_qa) / $(res cable "$f" cpu_qb) ms per s with the cable, $(res wav "$f" cpu_qa) / $(res wav "$f" cpu_qb) with WAV ($accel, each guest polling its queues); the broker $(res cable "$f" cpu_broker). Windows $(res cable "$f" win) s (cable) and $(res wav "$f" win) s (WAV)."
done
header="### $(date -u '+%Y-%m-%d %H:%M UTC') — sound crossover (scripts/bench-sound.sh${backend_nice:+, BACKEND_NICE=$backend_nice}), $(uname -r), $(nproc) CPUs, QEMU $accel: $("$QS" --version | head -1)"
body="Two QEMU VMs (sndtest on vhost-user-snd-pci, each card an \`xover vhost-user --sound\` back-end), 48 kHz stereo S16, guest buffer 4 periods; a plays 440 Hz, b records ${audio_s} s of it through the cable; a plays from the link's coming up, while b's guest still sets up its card (b's leading silence says if b captured first); measured over ${window_s} s of b's recording.

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
