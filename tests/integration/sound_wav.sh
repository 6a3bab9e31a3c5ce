#!/bin/bash
# labels: integration sound kvm
# xover's virtio-snd with the wav backend, end to end and bit-exact:
# python3 writes IN.wav (S16 sines, a phase offset so it does not start
# with 0), sndtest.elf runs role=loop under
#   xover run --sound virtio-snd,backend=wav:OUT.wav,in=IN.wav
# (every captured period is played back unchanged), and OUT.wav's data
# must be IN.wav's first N periods byte for byte, no more, no less. The
# guest's rx_fnv= (FNV-1a of what it captured) tells a capture fault from
# a playback one. 48 kHz stereo, 44.1 kHz mono, and odd period sizes.
# sndtest also checks the device's description (jacks=2 streams=2
# chmaps=2, S16, 44.1/48 kHz, 1..2 channels) on every run.
# Environment: PERIODS (200), VM_TIMEOUT (120 s per VM), KEEP_TMP=1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sound.inc"
periods=${PERIODS:-200}

# loop NAME RATE CHANNELS FREQS PERIOD_FRAMES [sndtest options...]
loop() {
	local name=$1 rate=$2 ch=$3 freqs=$4 pf=$5 rc t0 frames want got
	shift 5
	t0=$(now)
	frames=$((periods * pf))
	# a second more than the loop takes: the device captures from its start
	python3 "$W" sine "$tmp/$name-in.wav" --rate "$rate" --channels "$ch" --freq "$freqs" \
		--seconds "$(awk -v f=$frames -v r=$rate 'BEGIN { print f / r + 1 }')" >/dev/null || fail "$name: wavtool sine"
	start "$name" "${VM_TIMEOUT:-120}" "$X" run --kernel "$guest" --stats=all \
		--cmdline "role=loop rate=$rate channels=$ch periods=$periods period_frames=$pf tsc_khz=$tsc $*" \
		--sound "virtio-snd,backend=wav:$tmp/$name-out.wav,in=$tmp/$name-in.wav"
	rc=$(wait_vm "$name")
	[ "$rc" = 0 ] || fail "$name: exit status $rc"
	said "$name" "^sndtest: looped $periods periods\$" || fail "$name: no 'sndtest: looped $periods periods'"
	said "$name" '^sndtest: PASS$' || fail "$name: no PASS"
	want=$(python3 "$W" fnv "$tmp/$name-in.wav" --frames "$frames" | sed -n 's/^fnv=\(0x[0-9a-f]*\) .*/\1/p')
	got=$(gval "$name" rx_fnv)
	[ -n "$want" ] && [ "$got" = "$want" ] || fail "$name: the guest captured rx_fnv=$got, IN.wav's first $periods periods are $want"
	python3 "$W" compare "$tmp/$name-out.wav" "$tmp/$name-in.wav" --frames "$frames" >"$tmp/$name.cmp" 2>&1 ||
		{ cat "$tmp/$name.cmp"; fail "$name: OUT.wav is not IN.wav's first $periods periods"; }
	echo "ok $name: $periods periods of $pf frames, $ch ch at $rate Hz looped bit-exactly ($(python3 "$W" info "$tmp/$name-out.wav" | cut -d' ' -f4)), $(elapsed "$t0") s"
}

loop loop-48k-stereo 48000 2 997,1499 480
loop loop-44k-mono 44100 1 440 441 buffer_periods=8
loop loop-48k-odd 48000 2 1234,321 256 buffer_periods=6 prefill=3
echo PASS
