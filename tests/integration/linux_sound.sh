#!/bin/bash
# labels: integration qemu sound linux
# Linux's own virtio-snd driver and ALSA's aplay/arecord on xover's sound
# card: the Linux test guest (scripts/linux-guest.sh, initramfs-sound.cpio)
# under a QEMU with vhost-user-snd-pci (scripts/qemu-backports.sh; KVM if it
# can, else TCG), its card served by `xover vhost-user --sound`:
#   1. wav: a guest's `aplay` of a 2 s 440 Hz WAV comes out of the
#      back-end's OUT.wav bit-exact (then aplay's silent padding of its last
#      period), and its dominant frequency is 440 Hz;
#   2. crossover: A plays the tone in a loop, B's `arecord` records 2 s
#      through the broker's cable; the host decodes B's WAV (base64 on its
#      console) and its dominant frequency is within 1% of 440 Hz. Both
#      guests see their card's jacks "on" (ALSA controls Headphone/Mic
#      Jack) once linked, and A stops playing when its headphone jack goes
#      "off" (B's VM gone: the link's jack event reached Linux's driver).
# Unlike sndtest (polled, always kicks), Linux's driver negotiates
# VIRTIO_RING_F_EVENT_IDX and kicks a queue only when the device's
# avail_event asks for it: a device that never moves avail_event gets the
# first control request and no more ("control message (0x00000100)
# timeout", probe failed, no card). LINUX_SOUND_CMDLINE adds to the guests'
# kernel command line (debugging).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"
S=${XOVER_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
W=$S/tests/guests/sndtest/wavtool.py
linux_guest_built && [ -s "$LG/initramfs-sound.cpio" ] ||
	skip "no Linux guest with initramfs-sound.cpio in $LG (run scripts/linux-guest.sh)"
QS=${QEMU_SND:-${XOVER_CACHE:-$HOME/.cache/xover}/qemu-backports/root/usr/bin/qemu-system-x86_64}
[ -x "$QS" ] || skip "no QEMU with vhost-user-snd-pci (run scripts/qemu-backports.sh, or set QEMU_SND)"
QS_ARGS=(-L "$(dirname "$QS")/../share/qemu")
export QEMU_MODULE_DIR=$(dirname "$QS")/../lib/x86_64-linux-gnu/qemu
"$QS" "${QS_ARGS[@]}" -device vhost-user-snd-pci,help 2>/dev/null | grep -q chardev ||
	skip "$QS has no vhost-user-snd-pci"
# VU_LINUX_CMDLINE without pci=nomsi (QEMU 7.2's MSI-X workaround under
# TCG): vhost-user-snd-pci has no MSI-X vectors, the driver uses INTx anyway.
CMDLINE="${VU_LINUX_CMDLINE/ pci=nomsi/} xover.timeout=150 xover.sound_card_timeout=30 ${LINUX_SOUND_CMDLINE:-}"
t_all=$(now)

# snd_backend NAME SOUND-SPEC: `xover vhost-user --sound` serving VM NAME.
snd_backend() {
	start "$1" 600 "$X" vhost-user --socket "$tmp/$1.sock" --name "$1" --sound "$2" \
		--broker "$BROKER" --log-level info --stats=all
	wait_output "$1" "^vhost-user: .* serves $1's sound card" 10 || fail "$1: the vhost-user back-end did not listen"
}
# snd_linux RUN SOCKET "CMDLINE": the Linux guest under QEMU, its sound card
# (Linux's virtio_snd driver) served at SOCKET.
snd_linux() {
	# shellcheck disable=SC2086  # QEMU_ACCEL is several words
	start "$1" 170 "$QS" "${QS_ARGS[@]}" $QEMU_ACCEL -cpu qemu64,vendor=GenuineIntel -m 256M \
		-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
		-nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$LG/vmlinux" -initrd "$LG/initramfs-sound.cpio" -append "$CMDLINE $3" \
		-chardev "socket,id=s0,path=$2" -device vhost-user-snd-pci,chardev=s0
}
# finished RUN: the guest's init passed and rebooted (QEMU -no-reboot: 0).
finished() {
	local rc
	rc=$(wait_vm "$1" 170)
	grep -aq "XOVER-DONE result=pass" "$tmp/$1.out" ||
		fail "$1: $(grep -a 'XOVER-DONE\|FAIL\|XOVER-TIMEOUT' "$tmp/$1.out" | tr -d '\r' | tr '\n' ' ')(QEMU status $rc)"
	[ "$rc" = 0 ] || fail "$1: QEMU exit status $rc"
}
# marker RUN NAME: RUN's first NAME line, without the carriage return.
marker() { grep -a "^$2" "$tmp/$1.out" | head -1 | tr -d '\r'; }
# snd_stats NAME: the sound counters of NAME's last stats line.
snd_stats() {
	local k out=
	for k in control_requests control_refused io_refused io_bad_requests jack_events playback_periods \
		playback_bytes underruns capture_periods capture_bytes overruns backend_refused \
		cable_sent_bytes cable_dropped_bytes cable_unlinked_bytes cable_received_bytes; do
		v=$(last_stat "$1" $k)
		[ -n "$v" ] && out="$out $k=$v"
	done
	echo "${out# }"
}
# zero_stats NAME KEY...: fails unless each KEY of NAME's last stats line is 0.
zero_stats() {
	local name=$1 k
	shift
	for k; do [ "$(last_stat "$name" "$k")" = 0 ] || fail "$name: $k=$(last_stat "$name" "$k"), want 0 ($(snd_stats "$name"))"; done
}
# analyse WAV: "onset=N frames=N" of the first sample above 1000 and the
# frames from there, then wavtool's dominant line for each channel from
# the onset (up to 1 s).
analyse() {
	local onset
	onset=$(python3 - "$1" <<-'EOF'
		import struct, sys, wave
		with wave.open(sys.argv[1], "rb") as w:
		    n, ch, data = w.getnframes(), w.getnchannels(), w.readframes(w.getnframes())
		x = struct.unpack("<%dh" % (n * ch), data[: n * ch * 2])
		first = next((i // ch for i, v in enumerate(x) if abs(v) > 1000), n)
		print(first, n - first)
	EOF
	) || fail "cannot read $1"
	set -- "$1" $onset
	echo "onset=$2 frames=$3"
	[ "$3" -ge 4800 ] || return 0
	for c in 0 1; do
		echo "channel$c $(python3 "$W" dominant "$1" --channel $c --skip-frames "$2" --max-frames 48000)"
	done
}
# near440 "dominant=F ...": true if F is within 1% of 440 Hz.
near440() { awk -v l="$1" 'BEGIN { sub(/.*dominant=/, "", l); sub(/ .*/, "", l); exit !(l >= 435.6 && l <= 444.4) }'; }

# --- 1: the WAV backend ---------------------------------------------------------
python3 "$W" sine --rate 48000 --channels 2 --freq 440 --seconds 2 "$tmp/tone440.wav" >/dev/null
t0=$(now)
snd_backend w "virtio-snd,backend=wav:$tmp/out.wav"
snd_linux P "$tmp/w.sock" "xover.sound=play xover.sound_loops=1"
finished P
wait_stops w 1
grep -a '^aplay: \|XOVER-SOUND-\(CARD\|JACKS\|PLAYED\|DMESG\|IRQ\)' "$tmp/P.out" | tr -d '\r'
[[ $(marker P XOVER-SOUND-PLAYED) == *"rc=0 plays=1 "* ]] || fail "P: $(marker P XOVER-SOUND-PLAYED)"
python3 "$W" info "$tmp/out.wav" || fail "OUT.wav unreadable"
# aplay writes whole periods: the last one is padded with silence, so
# OUT.wav is the tone's 96000 frames, then less than a period of silence
# (the driver stops the stream once its hw_ptr reaches the end).
python3 - "$tmp/out.wav" "$tmp/out-head.wav" <<-'EOF'
	import sys, wave
	with wave.open(sys.argv[1], "rb") as r, wave.open(sys.argv[2], "wb") as w:
	    w.setparams(r.getparams())
	    w.writeframes(r.readframes(96000))
	EOF
python3 "$W" compare --frames 96000 "$tmp/out-head.wav" "$tmp/tone440.wav" >/dev/null ||
	fail "OUT.wav does not begin with the 2 s aplay played: $(python3 "$W" compare --frames 96000 "$tmp/out.wav" "$tmp/tone440.wav" 2>&1)"
tail=$(python3 "$W" compare --frames 96000 "$tmp/out.wav" "$tmp/tone440.wav" 2>&1 | grep -o 'followed by .*' || true)
echo "OUT.wav: the tone's 96000 frames bit-exact${tail:+, $tail}"
d=$(python3 "$W" dominant "$tmp/out.wav" --max-frames 96000)
near440 "$d" || fail "OUT.wav: $d, want 440 Hz +-1%"
echo "w stats: $(snd_stats w)"
played=$(last_stat w playback_bytes)
[ "${played:-0}" -ge 384000 ] || fail "w: playback_bytes=$played, want >= 384000 (2 s)"
zero_stats w control_refused io_refused io_bad_requests backend_refused
echo "ok wav: aplay's 2 s of 440 Hz came out of OUT.wav bit-exact ($d; $played bytes played), $(elapsed "$t0") s"

# --- 2: the crossover ---------------------------------------------------------------
# The broker links the cards once both back-ends' devices run (both guests'
# drivers started them), and both guests wait for that (jacks "on"). Then
# A plays the 2 s tone again and again (at most 40 times) until its
# headphone jack reads "off"; B records 2 s from 2 s later, prints its WAV
# (base64) and leaves, which unplugs A's jacks.
t0=$(now)
vu_broker
snd_backend a "virtio-snd,crossover=b"
snd_backend b "virtio-snd,crossover=a"
snd_linux A "$tmp/a.sock" "xover.sound=play xover.sound_loops=40 xover.sound_until=unplugged xover.sound_wait_jack=1"
snd_linux B "$tmp/b.sock" "xover.sound=record xover.sound_seconds=2 xover.sound_delay=2 xover.sound_wait_jack=1"
finished B
marker B XOVER-SOUND-RECORDED
tr -d '\r' <"$tmp/B.out" | sed -n '/^XOVER-SOUND-WAV-BEGIN/,/^XOVER-SOUND-WAV-END/p' | sed '1d;$d' |
	base64 -d >"$tmp/rec.wav" 2>/dev/null || fail "B: the recorded WAV does not decode (base64)"
want=$(marker B XOVER-SOUND-WAV-BEGIN | sed -n 's/.*bytes=//p')
[ -n "$want" ] && [ "$(wc -c <"$tmp/rec.wav")" = "$want" ] ||
	fail "B: decoded $(wc -c <"$tmp/rec.wav") bytes of the WAV, its console said ${want:-nothing}"
python3 "$W" info "$tmp/rec.wav"
a=$(analyse "$tmp/rec.wav")
echo "$a"
frames=$(sed -n '1s/.*frames=//p' <<<"$a")
if [ "${frames:-0}" -lt 24000 ]; then
	# Say why: A late (its jacks came on after B recorded) or A never told
	# (its jack event lost: it gives up waiting after sound_card_timeout).
	wait_vm A 60 >/dev/null
	fail "B recorded $frames frames of sound (of 96000), want >= 24000: A's tone did not arrive;" \
		"A: $(marker A XOVER-SOUND-JACKS) $(marker A XOVER-SOUND-PLAY) $(grep -a 'FAIL' "$tmp/A.out" | head -1 | tr -d '\r');" \
		"B: $(marker B XOVER-SOUND-JACKS)"
fi
for c in 0 1; do
	line=$(grep "^channel$c " <<<"$a")
	near440 "$line" || fail "B's recording, channel $c: $line, want 440 Hz +-1%"
done
finished A
for vm in A B; do
	j=$(marker $vm XOVER-SOUND-JACKS)
	echo "$vm: $j"
	[[ $j == *"Headphone_Jack=on"*"Mic_Jack=on"* ]] || fail "$vm: jacks not connected: $j"
done
played=$(marker A XOVER-SOUND-PLAYED)
echo "A: $played"
[[ $played == *" stopped=unplugged "*"Headphone_Jack=off"*"Mic_Jack=off"* ]] ||
	fail "A did not see its jacks go off when B left: $played"
wait_stops a 1
wait_stops b 1
echo "a stats: $(snd_stats a)"
echo "b stats: $(snd_stats b)"
zero_stats a control_refused io_refused io_bad_requests backend_refused
zero_stats b control_refused io_refused io_bad_requests backend_refused
[ "$(last_stat b cable_received_bytes)" -gt 0 ] || fail "b received nothing through the cable"
echo "ok crossover: B's arecord recorded A's aplay through the cable at $(grep '^channel0 ' <<<"$a" | sed 's/^channel0 //'), $(elapsed "$t0") s"
echo "total $(elapsed "$t_all") s"
echo PASS
