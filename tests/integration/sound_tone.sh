#!/bin/bash
# labels: integration sound kvm
# Tones through xover's virtio-snd and the wav backend, each analysed at
# the other end (Goertzel: the guest's in integer arithmetic, tone.c; the
# host's in python3, wavtool.py):
#  - record: IN.wav holds a 997 Hz sine (48 kHz stereo) or 440 Hz (44.1 kHz
#    mono); sndtest role=record expect= must find it within 1%, at its level,
#    continuous across periods, and have captured IN.wav's first periods
#    exactly (rx_fnv=), also when the guest stalls for 0.4 s mid-stream;
#    told expect=1100 for a 1 kHz file it must fail. Neither tone has a
#    whole number of cycles in a 10 ms period, so no two periods are alike
#    and a skipped or repeated one changes rx_fnv (1 kHz at 48 kHz would
#    hide it);
#  - silence: backend=none, and wav without in=, capture only silence;
#  - play: sndtest role=play freq=440 (1000) writes OUT.wav, which must hold
#    exactly the periods played, byte for byte what the guest sent (tx_fnv=),
#    with a dominant frequency within 1% on every channel.
# The guest also checks the real-time pace of both streams (tsc_khz= is the
# host's) and the device's description on every run.
# Environment: VM_TIMEOUT (120 s per VM), KEEP_TMP=1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sound.inc"
# within F WANT: F is within 1% of WANT
within() { awk -v f="$1" -v w="$2" 'BEGIN { d = f - w; if (d < 0) d = -d; exit !(f != "" && d * 100 <= w) }'; }

# vm NAME "CMDLINE" SOUND-SPEC: sndtest under xover; waits, and sets rc to its status.
vm() {
	start "$1" "${VM_TIMEOUT:-120}" "$X" run --kernel "$guest" --stats=all --cmdline "$2 tsc_khz=$tsc" --sound "$3"
	rc=$(wait_vm "$1")
}

# record NAME RATE CHANNELS FREQ PERIODS [WORDS]: IN.wav of FREQ, role=record
# expect=FREQ (and sndtest's WORDS).
record() {
	local name=$1 rate=$2 ch=$3 freq=$4 periods=$5 words=${6:-} rc frames want dom
	frames=$((periods * rate / 100))
	python3 "$W" sine "$tmp/$name-in.wav" --rate "$rate" --channels "$ch" --freq "$freq" --seconds 3 --amp 12000 \
		>/dev/null || fail "$name: wavtool sine"
	vm "$name" "role=record rate=$rate channels=$ch periods=$periods expect=$freq min_level=5000 continuous=1 $words" \
		"virtio-snd,backend=wav:$tmp/$name-out.wav,in=$tmp/$name-in.wav"
	[ "$rc" = 0 ] || fail "$name: exit status $rc"
	said "$name" "^sndtest: recorded $periods periods dominant=[0-9]+\.[0-9] Hz level=[0-9]+ continuous=yes\$" ||
		fail "$name: no (continuous) 'recorded $periods periods' line"
	said "$name" '^sndtest: PASS$' || fail "$name: no PASS"
	dom=$(gval "$name" dominant)
	within "$dom" "$freq" || fail "$name: dominant $dom Hz, want $freq"
	# 12000 * sqrt(1/2) = 8485
	[ "$(gval "$name" level)" -ge 8000 ] && [ "$(gval "$name" level)" -le 9000 ] || fail "$name: level $(gval "$name" level), want ~8485"
	want=$(python3 "$W" fnv "$tmp/$name-in.wav" --frames "$frames" | sed -n 's/^fnv=\(0x[0-9a-f]*\) .*/\1/p')
	[ "$(gval "$name" rx_fnv)" = "$want" ] || fail "$name: captured rx_fnv=$(gval "$name" rx_fnv), IN.wav's first $periods periods are $want"
	echo "ok $name: $freq Hz at $rate Hz, $ch ch: dominant=$dom level=$(gval "$name" level), bit-exact capture"
}

# play NAME RATE CHANNELS FREQ PERIODS: role=play into OUT.wav, analysed here.
play() {
	local name=$1 rate=$2 ch=$3 freq=$4 periods=$5 rc frames got c dom
	frames=$((periods * rate / 100))
	vm "$name" "role=play rate=$rate channels=$ch periods=$periods freq=$freq" "virtio-snd,backend=wav:$tmp/$name-out.wav"
	[ "$rc" = 0 ] || fail "$name: exit status $rc"
	said "$name" "^sndtest: played $periods periods\$" || fail "$name: no 'played $periods periods'"
	said "$name" '^sndtest: PASS$' || fail "$name: no PASS"
	[ "$(gval "$name" starved)" = 0 ] || echo "note $name: the guest let the queue run dry $(gval "$name" starved) times"
	python3 "$W" info "$tmp/$name-out.wav" >"$tmp/$name.info" || fail "$name: OUT.wav unreadable"
	grep -q "^rate=$rate channels=$ch width=2 frames=$frames " "$tmp/$name.info" ||
		fail "$name: OUT.wav is $(cat "$tmp/$name.info"), want rate=$rate channels=$ch frames=$frames"
	got=$(python3 "$W" fnv "$tmp/$name-out.wav" | sed -n 's/^fnv=\(0x[0-9a-f]*\) .*/\1/p')
	[ "$got" = "$(gval "$name" tx_fnv)" ] || fail "$name: OUT.wav fnv $got, the guest sent tx_fnv=$(gval "$name" tx_fnv)"
	for ((c = 0; c < ch; c++)); do
		dom=$(python3 "$W" dominant "$tmp/$name-out.wav" --channel $c | sed -n 's/^dominant=\([0-9.]*\) .*/\1/p')
		within "$dom" "$freq" || fail "$name: OUT.wav channel $c dominant $dom Hz, want $freq"
	done
	echo "ok $name: $freq Hz at $rate Hz, $ch ch: OUT.wav $frames frames as sent, dominant $dom Hz"
}

record rec-997-48k 48000 2 997 100
record rec-440-44k 44100 1 440 150
# A guest that stops taking periods for 0.4 s (its 4 queued buffers fill in
# 40 ms) still captures IN.wav without a gap: a file input waits for it.
record rec-stalled 48000 2 997 60 "stall_at=10 stall_ms=400 pace=0"

# A wrong expectation must fail: the guest's check is not a rubber stamp.
python3 "$W" sine "$tmp/wrong-in.wav" --rate 48000 --channels 2 --freq 1000 --seconds 2 >/dev/null || fail "wavtool sine"
vm wrong "role=record periods=50 expect=1100" "virtio-snd,backend=wav:$tmp/wrong-out.wav,in=$tmp/wrong-in.wav"
[ "$rc" = 1 ] || fail "expect=1100 for a 1 kHz input: status $rc, want 1"
said wrong 'sndtest: FAIL: dominant 1000\.0 Hz is not within 1% of expect=1100' || fail "expect=1100: no FAIL line naming 1000.0 Hz"
echo "ok expect=1100 for a 1 kHz input fails"

vm silence-none "role=record periods=50 silence=1" "virtio-snd,backend=none"
[ "$rc" = 0 ] || fail "silence-none: exit status $rc"
said silence-none '^sndtest: recorded 50 periods dominant=0\.0 Hz level=0 continuous=yes$' || fail "silence-none: record line"
vm silence-wav "role=record periods=50 silence=1" "virtio-snd,backend=wav:$tmp/silence-out.wav"
[ "$rc" = 0 ] || fail "silence-wav (no in=): exit status $rc"
echo "ok backend=none and wav without in= capture silence"

play play-440-48k 48000 2 440 100
play play-1k-44k 44100 1 1000 100
echo PASS
