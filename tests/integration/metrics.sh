#!/bin/bash
# labels: integration crossover metrics kvm
# --metrics FILE --metrics-interval 1 on crossover pairs: each VM appends
# one JSON object a line while it runs and one more at exit, grouped per
# device (vm, vcpuN, pio/mmio devices, the NIC); every line parses, the
# receiver's has at least two, and its last holds the counters at exit: the
# receiver's rx_frames and xover_rx_frames are the frames the sender sent
# (written into its ring by the sender's process, or, with a receiver
# slower than its sender, moved out of the sender's handoff by its own).
# The --stats lines come from the same snapshot as that last line: --stats
# shows exactly its counters that are not 0 (no "=0" anywhere), --stats=all
# every one of them.
source "$(dirname "$0")/crossover_common.inc"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
N=$(emulated_count 20000)

# check.py METRICS OUT NIC MIN_LINES STATS_MODE [KEY=VALUE...]: the metrics
# file's lines, its last line against the VM's stats lines in OUT
# (STATS_MODE nonzero: --stats, all: --stats=all), and the NIC group's
# KEY=VALUE counters in the last line.
cat >"$tmp/check.py" <<'PY'
import json, sys

metrics, out, nic, min_lines, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
expected = dict(kv.split("=", 1) for kv in sys.argv[6:])
BUSES = ("pio", "mmio")


def fail(msg):
    print(f"FAIL: {metrics}: {msg}")
    sys.exit(1)


def text(value):  # a JSON value as the stats line prints it
    return value if isinstance(value, str) else json.dumps(value)


lines = open(metrics, encoding="utf-8").read().split("\n")
if lines[-1] != "":
    fail("the last line does not end in a newline")
objects = []
for i, line in enumerate(lines[:-1], 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        fail(f"line {i} is not JSON ({e}): {line[:200]}")
    if not isinstance(o, dict):
        fail(f"line {i} is not a JSON object")
    for key in ("utc_time_ms", "vm", "vcpu0", "pio", "mmio", nic):
        if key not in o:
            fail(f"line {i} has no {key!r}")
    objects.append(o)
if len(objects) < min_lines:
    fail(f"{len(objects)} line(s), expected at least {min_lines}")
for a, b in zip(objects, objects[1:]):
    if b["utc_time_ms"] < a["utc_time_ms"] or b["vm"]["uptime_ms"] < a["vm"]["uptime_ms"]:
        fail("lines out of time order")
last = objects[-1]
if "serial" not in last["pio"] or nic not in last["mmio"]:
    fail("no serial in pio or no NIC in mmio")
for key, want in expected.items():
    if text(last[nic].get(key)) != want:
        fail(f"{nic}.{key} = {last[nic].get(key)} in the last line, expected {want}")

# The last line and the stats lines: one snapshot, the same values.
groups = {}
for key, value in last.items():
    if key in BUSES:
        for device, counters in value.items():
            groups[(device, key)] = counters
    elif key != "utc_time_ms":
        groups[(key, "")] = value
shown = {}
for line in open(out, encoding="utf-8", errors="replace").read().splitlines():
    if not line.startswith("stats: "):
        continue
    words = line.split()
    fields = dict(w.split("=", 1) for w in words[2:])
    bus = fields.pop("bus", "")
    if (words[1], bus) not in groups:
        fail(f"a stats line the metrics line does not have: {line}")
    shown[(words[1], bus)] = fields
zeros = 0
for group, values in groups.items():
    want = {k: text(v) for k, v in values.items() if mode == "all" or text(v) != "0"}
    zeros += sum(text(v) == "0" for v in values.values())
    got = shown.get(group, {})
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))
        fail(f"stats line for {group} differs from the last metrics line ({mode}): {diff[:6]}")
if mode == "all" and zeros == 0:
    fail("no counter is 0 (--stats=all should have shown some)")
print(f"ok: {metrics.split('/')[-1]}: {len(objects)} lines of JSON, {len(groups)} groups, "
      f"{nic} rx_frames={last[nic]['rx_frames']} xover_rx_frames={last[nic]['xover_rx_frames']}; "
      f"--stats{'=all' if mode == 'all' else ''} says the same ({zeros} counters at 0)")
PY

# pair TAG RXMODEL RX_STATS TXMODEL TX_STATS [RX options]: TXMODEL sends N
# frames to RXMODEL, both with --metrics (1 s) and the given --stats form;
# the sender starts once the receiver has written a line, so the receiver
# writes at least two (one while waiting, one at exit).
pair() {
	local tag=$1 rxm=$2 rxs=$3 txm=$4 txs=$5 rxo=${6:-} rx=mrx$1 tx=mtx$1
	local rxmac=52:54:00:ce:$1:01 txmac=52:54:00:ce:$1:02 i
	vm $rx "$rxm" $rxmac $tx "role=rx count=$N $rxo start_timeout_ms=60000 timeout_ms=30000" \
		"$rxs" --metrics "$tmp/$rx.metrics" --metrics-interval 1
	for i in $(seq 300); do [ -s "$tmp/$rx.metrics" ] && break; sleep 0.1; done
	[ -s "$tmp/$rx.metrics" ] || fail "$rx: no metrics line within 30 s"
	vm $tx "$txm" $txmac $rx "role=tx count=$N size=64 dst=$rxmac timeout_ms=30000" \
		"$txs" --metrics "$tmp/$tx.metrics" --metrics-interval 1
	local rrc=$(wait_vm $rx) trc=$(wait_vm $tx)
	[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "$txm -> $rxm: exit status rx=$rrc tx=$trc"
	result $rx | grep -q "frames=$N .*errors=0 lost=0" || fail "$txm -> $rxm: $(result $rx)"
	result $tx | grep -q "frames=$N " || fail "$txm -> $rxm: $(result $tx)"
	local mode
	for v in $rx $tx; do
		grep -q "^stats: vm name=$v " "$tmp/$v.out" || fail "$v: no stats lines"
		mode=nonzero
		[ "$v" = $rx ] && [ "$rxs" = --stats=all ] && mode=all
		[ "$v" = $tx ] && [ "$txs" = --stats=all ] && mode=all
		if [ $mode = nonzero ]; then
			grep -a '^stats: ' "$tmp/$v.out" | grep -qE '=0( |$)' && fail "$v: --stats printed a counter at 0: $(grep -a '^stats: ' "$tmp/$v.out" | grep -E '=0( |$)' | head -3)"
		else
			grep -a '^stats: ' "$tmp/$v.out" | grep -qE '=0( |$)' || fail "$v: --stats=all printed no counter at 0"
		fi
	done
	python3 "$tmp/check.py" "$tmp/$rx.metrics" "$tmp/$rx.out" "nic0-$(nic_model "$rxm")" 2 \
		"$([ "$rxs" = --stats=all ] && echo all || echo nonzero)" \
		rx_frames=$N xover_rx_frames=$N rx_bytes=$((N * 64)) xover_rx_bytes=$((N * 64)) || fail "$txm -> $rxm: receiver"
	python3 "$tmp/check.py" "$tmp/$tx.metrics" "$tmp/$tx.out" "nic0-$(nic_model "$txm")" 1 \
		"$([ "$txs" = --stats=all ] && echo all || echo nonzero)" \
		xover_tx_frames=$N xover_rx_frames=0 || fail "$txm -> $rxm: sender"
	local moved=$(stat $rx xover_handoff_moved_for_peers)
	echo "ok: $txm -> $rxm${rxo:+ ($rxo)}: receiver rx_frames=$N in its last metrics line, ${moved:-0} moved in by its own process"
}

pair 01 e1000 --stats virtio --stats=all
# A receiver slower than its sender: parked frames, some moved by the receiver's own process.
pair 02 virtio --stats=all e1000 --stats "rx_batch=32 rx_read_reg=1 rx_work_ns=2000"
echo PASS
