#!/bin/bash
# labels: integration sound unit-host
# The sound test kernel's integer math on the host, no VM: builds
# tests/guests/sndtest/tone.c (the very file sndtest.elf is built from)
# with a host main (tone_check.c) and checks it against libm: sine and
# generator accuracy, Goertzel dominant-frequency detection of 440, 1000,
# 3000 Hz and others at 44.1 and 48 kHz (within 0.5 Hz), level and silence,
# the continuity check (dropped, repeated or zeroed periods, a lost frame).
# Then wavtool.py (the sound_*.sh tests' host side) against the same
# signals: its FNV-1a must equal tone.c's and its Goertzel must agree.
set -u
S=${XOVER_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
D=$S/tests/guests/sndtest
CC=${CC:-gcc}
command -v "$CC" >/dev/null || { echo "SKIP: no host C compiler ($CC)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The guest's flags where they matter to the math (no SSE in the guest:
# the same source must also be clean under -mgeneral-regs-only).
"$CC" -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -mgeneral-regs-only -c -o "$tmp/tone_guest.o" "$D/tone.c" ||
	fail "tone.c does not build with the guest's -ffreestanding -mgeneral-regs-only"
"$CC" -std=gnu11 -O2 -Wall -Wextra -Werror -o "$tmp/tone_check" "$D/tone.c" "$D/tone_check.c" -lm ||
	fail "tone_check does not build"
"$tmp/tone_check" || fail "tone_check"

# wavtool.py against tone.c: same FNV-1a, same dominant frequency.
command -v python3 >/dev/null || { echo "SKIP: python3 not installed (wavtool.py half)"; exit 77; }
W=$D/wavtool.py
cat >"$tmp/gen.c" <<'EOF'
/* Writes tone.c's 440 Hz, 2 channels, 48 kHz, 1 s as raw S16_LE and prints its FNV-1a. */
#include <stdio.h>
#include "tone.h"
int main(void)
{
	static int16_t buf[48000 * 2];
	struct tone_gen g;
	tone_gen_init(&g, 440, 48000, 16384);
	tone_gen_fill(&g, buf, 48000, 2);
	fwrite(buf, sizeof(buf), 1, stdout);
	fprintf(stderr, "fnv=0x%08x\n", tone_fnv1a(TONE_FNV_INIT, buf, sizeof(buf)));
	return 0;
}
EOF
"$CC" -std=gnu11 -O2 -I"$D" -o "$tmp/gen" "$tmp/gen.c" "$D/tone.c" || fail "gen does not build"
"$tmp/gen" >"$tmp/tone.raw" 2>"$tmp/gen.fnv" || fail "gen"
python3 - "$tmp/tone.raw" "$tmp/tone.wav" <<'EOF' || fail "raw to wav"
import sys, wave
data = open(sys.argv[1], "rb").read()
with wave.open(sys.argv[2], "wb") as w:
    w.setnchannels(2); w.setsampwidth(2); w.setframerate(48000); w.writeframes(data)
EOF
want=$(cat "$tmp/gen.fnv")
got=$(python3 "$W" fnv "$tmp/tone.wav" | cut -d' ' -f1) || fail "wavtool fnv"
[ "$got" = "$want" ] || fail "wavtool.py fnv $got, tone.c $want"
dom=$(python3 "$W" dominant "$tmp/tone.wav" --channel 1) || fail "wavtool dominant"
f=$(sed -n 's/^dominant=\([0-9.]*\) .*/\1/p' <<<"$dom")
awk -v f="$f" 'BEGIN { exit !(f > 439.5 && f < 440.5) }' || fail "wavtool.py dominant of tone.c's 440 Hz: $dom"
# wavtool sine -> wavtool dominant at 44.1 kHz mono, 1 kHz
python3 "$W" sine "$tmp/k.wav" --rate 44100 --channels 1 --freq 1000 --seconds 1 >/dev/null || fail "wavtool sine"
dom=$(python3 "$W" dominant "$tmp/k.wav") || fail "wavtool dominant"
f=$(sed -n 's/^dominant=\([0-9.]*\) .*/\1/p' <<<"$dom")
awk -v f="$f" 'BEGIN { exit !(f > 999.5 && f < 1000.5) }' || fail "wavtool.py dominant of a 1 kHz sine: $dom"
python3 "$W" compare "$tmp/k.wav" "$tmp/k.wav" --frames 44100 >/dev/null || fail "wavtool compare of a file with itself"
python3 "$W" compare "$tmp/k.wav" "$tmp/k.wav" --frames 44000 >/dev/null && fail "wavtool compare took a longer file as equal"
echo "ok wavtool.py: $got matches tone.c, dominant 440/1000 Hz"
echo PASS
