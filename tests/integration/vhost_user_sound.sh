#!/bin/bash
# labels: integration qemu sound
# xover's virtio-snd served to QEMU VMs over vhost-user (`xover vhost-user
# --sound`), each running the sndtest kernel on QEMU's vhost-user-snd-pci
# (QEMU >= 8.2: scripts/qemu-backports.sh; Debian 12's 7.2 has none). The
# card is xover's own device model, paced by its own clocks, so this drives
# the device, its WAV backend and the sound crossover end to end through
# the real binary, with or without /dev/kvm (QEMU falls back to TCG):
#   1. wav: a capture played back (role=loop) comes out of OUT.wav bit-exact;
#   2. wav: a 1 kHz input is recorded as 1 kHz (role=record expect=1000);
#   3. crossover: VM a plays 440 Hz, VM b records it through the cable
#      (frequency within 1%), both jacks report "connected" at link up;
#   4. the player killed: b's jack reports "disconnected" and b records silence;
#   5. a format mismatch (48 kHz against 44.1 kHz) is refused, with a message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"
S=${XOVER_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
SNDTEST=$B/guests/sndtest.elf
[ -f "$SNDTEST" ] || skip "$SNDTEST not built"
W=$S/tests/guests/sndtest/wavtool.py
. "$(dirname "$0")/vhost_user_sound.inc"

# passed RUN: the guest printed PASS and exited 0 (isa-debug-exit: 1).
passed() {
	local rc
	rc=$(wait_vm "$1" 120)
	grep -aq '^sndtest: PASS' "$tmp/$1.out" || fail "$1: sndtest did not pass (run status $rc)"
	[ "$rc" = 1 ] || fail "$1: QEMU exited with $rc (sndtest exits through isa-debug-exit: 1)"
}

# --- 1, 2: the WAV backend ----------------------------------------------------
python3 "$W" sine --rate 48000 --channels 2 --freq 1000 --seconds 4 "$tmp/in.wav" >/dev/null
snd_backend wav "virtio-snd,backend=wav:$tmp/out.wav,in=$tmp/in.wav"
snd_vm loop "$tmp/wav.sock" "role=loop periods=100"
passed loop
wait_stops wav 1
python3 "$W" compare --frames 48000 "$tmp/out.wav" "$tmp/in.wav" >/dev/null ||
	fail "OUT.wav is not the first second of IN.wav: $(python3 "$W" compare --frames 48000 "$tmp/out.wav" "$tmp/in.wav" 2>&1)"
[ "$(last_stat wav playback_bytes)" = 192000 ] || fail "wav: playback_bytes=$(last_stat wav playback_bytes), want 192000"
echo "ok wav: 100 periods captured from IN.wav came back out of OUT.wav bit-exact (played through xover's card)"

# The capture goes on where it was (the backend's input is opened once).
snd_vm record "$tmp/wav.sock" "role=record periods=100 expect=1000 min_level=3000"
passed record
grep -a '^sndtest: recorded' "$tmp/record.out"
echo "ok wav: a 1 kHz input recorded as 1 kHz"

# --- hostile front-ends: each session refused with a message, the card still served
python3 - "$tmp/wav.sock" <<'PY' || fail "the hostile sound front-end's cases"
import socket, struct, sys, time
GET_FEATURES, SET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 1, 2, 15, 16
SET_VRING_NUM, GET_CONFIG = 8, 24
def session(messages):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    for request, payload in messages:
        s.sendall(struct.pack("<III", request, 1, len(payload)) + payload)
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        sys.exit("the back-end kept a hostile session open")
    except ConnectionResetError:
        pass  # it closed with our messages unread: refused
    s.close()
    time.sleep(0.2)
config = lambda size, data: struct.pack("<III", 0, size, 0) + bytes(data)
session([(GET_CONFIG, config(12, 12))])                                   # CONFIG never negotiated
session([(SET_PROTOCOL_FEATURES, struct.pack("<Q", 1 << 9)), (GET_CONFIG, config(300, 0))])   # too large
session([(SET_PROTOCOL_FEATURES, struct.pack("<Q", 1 << 9)), (GET_CONFIG, config(12, 16))])   # sizes disagree
session([(SET_VRING_NUM, struct.pack("<II", 4, 64))])                  # a fifth ring
session([(SET_FEATURES, struct.pack("<Q", 1 << 10))])                  # a feature never offered
PY
for m in "GET_CONFIG: the CONFIG protocol feature was not negotiated" "GET_CONFIG: 300 bytes of configuration, more than 256" \
	"GET_CONFIG: payload of" "SET_VRING_NUM: ring 4 does not exist \\(virtio-snd: rings 0 to 3\\)" "SET_FEATURES: .* acks features never offered"; do
	grep -aqE "session ended: $m" "$tmp/wav.out" || fail "no session refused with '$m'"
done
snd_vm after "$tmp/wav.sock" "role=record periods=20 min_level=3000"
passed after
echo "ok hostile front-ends: 5 sessions refused, each with a message; the card still served the next one"

# --- 3: the crossover -----------------------------------------------------------
vu_broker
snd_backend a "virtio-snd,crossover=b"
snd_backend b "virtio-snd,crossover=a"
snd_vm player "$tmp/a.sock" "role=play freq=440 periods=3000 wait_jack=connected events=1"
snd_vm recorder "$tmp/b.sock" "role=record periods=100 expect=440 min_level=3000 wait_jack=connected events=1"
passed recorder
grep -a '^sndtest: recorded' "$tmp/recorder.out"
grep -aq '^sndtest: jack 1 connected' "$tmp/recorder.out" || fail "recorder: no jack event for the microphone at link up"
grep -aq '^sndtest: jack 0 connected' "$tmp/player.out" || fail "player: no jack event for the headphone at link up"
echo "ok crossover: b recorded a's 440 Hz through the cable; both cards' jacks reported connected"

# --- 4: the player killed -------------------------------------------------------
# A second recording runs 3 s; a's QEMU is killed 1 s into it. The card keeps
# its clock: the periods go on, silent, and the microphone's jack reports
# the cable pulled.
snd_vm recorder2 "$tmp/b.sock" "role=record periods=300 wait_jack=connected events=1"
wait_output recorder2 "wait_jack: jack 1 connected" 60 || fail "recorder2: the link did not come up again"
sleep 1
for p in $(pgrep -f "path=$tmp/a.sock"); do kill -9 "$p"; done
wait_output b "sound link with a down" 20 || fail "b: the link did not go down when a's player died"
passed recorder2
grep -aq '^sndtest: jack 1 disconnected' "$tmp/recorder2.out" || fail "recorder2: no jack event when the player died"
silent=$(grep -ao 'silent_periods=[0-9]*' "$tmp/recorder2.out" | cut -d= -f2)
[ "${silent:-0}" -ge 100 ] || fail "recorder2: $silent silent periods of 300 after the player died 1 s in, want >= 100"
[ "$silent" -le 280 ] || fail "recorder2: $silent silent periods of 300: the player's sound never arrived"
echo "ok the player killed: b's microphone jack reported disconnected, and b recorded silence ($silent of 300 periods)"

# --- 5: a format mismatch -------------------------------------------------------
snd_backend c "virtio-snd,crossover=d,rate=48000"
snd_backend d "virtio-snd,crossover=c,rate=44100"
snd_vm c-vm "$tmp/c.sock" "role=record periods=300 silence=1"
snd_vm d-vm "$tmp/d.sock" "role=record periods=300 silence=1 rate=44100"
wait_output c "sound link with d refused: .*44100" 30 || fail "c: no refusal naming d's format"
wait_output d "sound link with c refused: .*48000" 30 || fail "d: no refusal naming c's format"
passed c-vm
passed d-vm
grep -a 'refused' "$tmp/c.out" | tail -1
echo "ok a format mismatch is refused with both formats named"
echo PASS
