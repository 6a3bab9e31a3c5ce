#!/bin/bash
# labels: integration crossover kvm
# The crossover examples shipped in configs/ (the README's demo first) run
# as a user would run them, `xover up FILE`, and do what their comments
# say: every VM exits 0, frames cross with nothing lost, window pairs copy
# no byte, the sound pair's recorder hears the player. Each file is copied with its kernel path pointed at this build
# and gets a private broker (XDG_RUNTIME_DIR), so tests can run in parallel.
source "$(dirname "$0")/lib.sh"
need_xover
need_kvm
src=$(cd "$(dirname "$0")/../.." && pwd)

# up NAME: runs configs/NAME.toml; its output is in $tmp/NAME.out.
up() {
	sed "s#\.\./build/#$B/#" "$src/configs/$1.toml" >"$tmp/$1.toml"
	mkdir -p "$tmp/run-$1"
	XDG_RUNTIME_DIR=$tmp/run-$1 timeout 180 "$B/xover" up "$tmp/$1.toml" >"$tmp/$1.out" 2>&1
	local rc=$?
	[ $rc = 0 ] || { tail -30 "$tmp/$1.out"; fail "$1.toml: xover up exited $rc"; }
	grep -q "== xover up: summary ==" "$tmp/$1.out" || fail "$1.toml: no summary"
}
# total NAME KEY: the sum of counter KEY over the file's NICs (--stats lines).
total() {
	grep -a '\] stats: nic' "$tmp/$1.out" | grep -ao " $2=[0-9]*" | cut -d= -f2 |
		awk '{ s += $1 } END { print s + 0 }'
}
copied() { total "$1" xover_bytes_copied; }

up crossover-pair
grep -q "RESULT role=txrx tx_frames=100000 frames=100000 .*errors=0 lost=0" "$tmp/crossover-pair.out" ||
	fail "demo: $(grep -a 'RESULT' "$tmp/crossover-pair.out")"
grep -q "RESULT role=echo frames=100000" "$tmp/crossover-pair.out" || fail "demo: the echo side did not echo 100000"
# Copy mode: every byte that crossed (test frames and the few probes) was copied once.
crossed=$(total crossover-pair xover_tx_bytes)
[ "$crossed" -ge $((2 * 100000 * 64)) ] && [ "$(copied crossover-pair)" = "$crossed" ] ||
	fail "demo: crossed $crossed bytes, copied $(copied crossover-pair)"
echo "ok: demo: 100000 frames each way, $(grep -ao '=> [0-9]* frames/s' "$tmp/crossover-pair.out")"

for pair in "$src"/configs/crossover-window*.toml; do
	name=$(basename "$pair" .toml)
	up "$name"
	grep -aq "RESULT role=rx frames=100000 .*errors=0 lost=0" "$tmp/$name.out" || fail "$name: $(grep -a RESULT "$tmp/$name.out")"
	[ "$(copied "$name")" = 0 ] || fail "$name: $(copied "$name") bytes copied in window mode"
	echo "ok: $name: 100000 frames, 0 bytes copied"
done
# auto-trio.toml needs its tap uplink: crossover_uplink.sh runs it in a netns.

# sound-pair.toml: vm-a's headphones into vm-b's microphone; the summary
# shows both verdicts and what the cable carried.
up sound-pair
[ "$(grep -ac '^\[vm-[ab]\] sndtest: PASS' "$tmp/sound-pair.out")" = 2 ] ||
	fail "sound-pair: $(grep -a 'sndtest: ' "$tmp/sound-pair.out" | tail -4)"
summary=$(sed -n '/== xover up: summary ==/,$p' "$tmp/sound-pair.out")
grep -q "sndtest: PASS" <<<"$summary" || fail "sound-pair: no sndtest verdict in the summary"
received=$(grep -o "snd0[^:]*: .*cable_received_bytes=[0-9]*" <<<"$summary" | grep -o "cable_received_bytes=[0-9]*" | cut -d= -f2 | sort -n | tail -1)
[ "${received:-0}" -gt 0 ] || fail "sound-pair: the summary shows no bytes through the cable: $summary"
echo "ok: sound-pair: both sndtest PASS; the summary shows $received bytes through the cable"
