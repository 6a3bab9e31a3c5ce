#!/bin/bash
# labels: integration qemu sound
# The sound test kernel (sndtest.elf) under QEMU, KVM when /dev/kvm is
# usable and TCG otherwise:
#  - on a machine without a virtio-snd device it prints exactly
#    `sndtest: no virtio-snd device` and exits with status 5 (QEMU: 11);
#  - a bad command line exits with status 2 before looking for a device.
# Then, only when a QEMU with virtio-sound-pci is at hand (QEMU 8.2 and
# later; QEMU_SND=binary, QEMU_SND_ARGS=extra words such as "-L DIR"; by
# default $QEMU if it has the device), the driver against QEMU's device, as
# a second implementation of the spec: strict=0 (QEMU describes itself
# differently from xover: no jacks, no channel maps, every format and rate)
# and pace=0 (QEMU paces TX by its audio timer, not by the period):
# role=info, role=play into QEMU's wav audiodev (a 440 Hz tone, checked
# on the host), role=record silence=1 and role=loop from its none audiodev.
# Environment: QEMU (qemu-system-x86_64), QEMU_SND, QEMU_SND_ARGS.
. "$(dirname "$0")/lib.sh"
S=${XOVER_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -n "$B" ] || skip "XOVER_BUILD not set"
guest=$B/guests/sndtest.elf
[ -f "$guest" ] || skip "$guest not built"
command -v "$QEMU" >/dev/null || skip "$QEMU not installed"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=kvm; else accel=tcg; fi
tsc=$(host_tsc_khz)

# qrun NAME QEMU-BINARY "CMDLINE" [qemu args...]: sndtest under that QEMU,
# console in $tmp/NAME.out; prints the guest's exit status (QEMU's
# isa-debug-exit gives (v << 1) | 1), or 100 + QEMU's own status. QEMU's
# own failure (status 1) reads as guest status 0: every run is also judged
# by the lines the guest printed.
qrun() {
	local name=$1 qemu=$2 cmdline=$3 rc
	shift 3
	timeout -k 5 120 "$qemu" -accel "$accel" -cpu qemu64 -m 128M \
		-kernel "$guest" -append "$cmdline" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-display none -serial stdio -monitor none -no-reboot "$@" >"$tmp/$name.out" 2>&1 </dev/null
	rc=$?
	if [ $((rc & 1)) -eq 1 ] && [ $rc -lt 124 ]; then echo $(((rc - 1) / 2)); else echo $((100 + rc)); fi
}
# said NAME PATTERN: the guest printed a line ending in PATTERN (firmware
# text may precede the first guest line on the same line).
said() { tr -d '\r' <"$tmp/$1.out" | grep -aqE "$2"; }

# --- no device -------------------------------------------------------------
for role in info play record loop; do
	rc=$(qrun "nodev-$role" "$QEMU" "role=$role tsc_khz=$tsc")
	[ "$rc" = 5 ] || fail "role=$role without a device: status $rc, want 5"
	said "nodev-$role" '(^|[^a-z])sndtest: no virtio-snd device$' || fail "role=$role: no 'sndtest: no virtio-snd device' line"
	said "nodev-$role" 'sndtest: (PASS|FAIL)' && fail "role=$role: went on without a device"
done
echo "ok no device: 'sndtest: no virtio-snd device', status 5 (QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), $accel)"

# --- bad command lines: status 2 before the device is looked for ------------
for bad in "role=dance" "rate=22050" "channels=3" "buffer_periods=0" "silence=1 expect=1000" "wait_jack=maybe"; do
	rc=$(qrun usage "$QEMU" "$bad")
	[ "$rc" = 2 ] || fail "'$bad': status $rc, want 2"
	said usage 'sndtest: no virtio-snd device' && fail "'$bad': looked for the device"
done
echo "ok bad command lines: status 2"

# --- QEMU's virtio-sound-pci, when there is one -------------------------------
QS=${QEMU_SND:-$QEMU}
# shellcheck disable=SC2086  # QEMU_SND_ARGS is several words
if ! "$QS" ${QEMU_SND_ARGS:-} -device virtio-sound-pci,help 2>&1 | grep -q '^virtio-sound-pci options'; then
	echo "note: $QS has no virtio-sound-pci (QEMU >= 8.2 has it; set QEMU_SND): reference-device runs not made"
	echo PASS
	exit 0
fi
W=$S/tests/guests/sndtest/wavtool.py
command -v python3 >/dev/null || skip "python3 not installed"
snd() { # snd NAME "CMDLINE" AUDIODEV
	# shellcheck disable=SC2086
	qrun "$1" "$QS" "$2 strict=0 pace=0 tsc_khz=$tsc" ${QEMU_SND_ARGS:-} \
		-audiodev "$3" -device virtio-sound-pci,audiodev=snd0,disable-legacy=on
}
rc=$(snd ref-info "role=info" none,id=snd0)
[ "$rc" = 0 ] || fail "QEMU's device, role=info: status $rc"
said ref-info '^sndtest: PASS$' || fail "QEMU's device: ref-info did not pass"
said ref-info '^sndtest: pcm 0 output .*channels=1\.\.2' || fail "QEMU's device: no output stream 0 with 1..2 channels"
said ref-info '^sndtest: pcm 1 input ' || fail "QEMU's device: no input stream 1"

rc=$(snd ref-play "role=play freq=440 periods=100" "wav,id=snd0,path=$tmp/play.wav,out.frequency=48000,out.channels=2")
[ "$rc" = 0 ] || fail "QEMU's device, role=play: status $rc"
said ref-play '^sndtest: PASS$' || fail "QEMU's device: ref-play did not pass"
said ref-play '^sndtest: played 100 periods$' || fail "QEMU's device: no 'played 100 periods'"
dom=$(python3 "$W" dominant "$tmp/play.wav") || fail "wavtool dominant of QEMU's wav"
f=$(sed -n 's/^dominant=\([0-9.]*\) .*/\1/p' <<<"$dom")
awk -v f="$f" 'BEGIN { exit !(f > 435.6 && f < 444.4) }' || fail "QEMU's wav of a 440 Hz play: $dom"

rc=$(snd ref-silence "role=record periods=50 silence=1" none,id=snd0)
[ "$rc" = 0 ] || fail "QEMU's device, role=record silence=1: status $rc"
said ref-silence '^sndtest: PASS$' || fail "QEMU's device: ref-silence did not pass"
said ref-silence '^sndtest: recorded 50 periods dominant=0\.0 Hz level=0 continuous=yes$' || fail "QEMU's device: record line"

rc=$(snd ref-loop "role=loop periods=50" none,id=snd0)
[ "$rc" = 0 ] || fail "QEMU's device, role=loop: status $rc"
said ref-loop '^sndtest: PASS$' || fail "QEMU's device: ref-loop did not pass"
said ref-loop '^sndtest: looped 50 periods$' || fail "QEMU's device: no 'looped 50 periods'"
echo "ok QEMU's virtio-sound-pci ($("$QS" --version | head -1 | awk '{print $4}')): info, play ($dom), record silence, loop"
echo PASS
