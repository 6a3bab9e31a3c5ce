#!/bin/bash
# labels: integration crossover kvm
# The receiver's producer lock (nic/owned_lock.hpp), held by another
# process in the receiver's real shared page, through the real binary:
# - held by a process that died (a peer SIGKILLed mid-batch): the first
#   sender to find it held recovers it, and every frame arrives;
# - held by a live process (a peer stopped mid-batch): the sender's frames
#   wait, none is dropped; once the holder is gone they all arrive.
# The holder's word is written into the receiver's page from outside
# (/proc/PID/fd of its state memfd, offset 328: shared_nic_state.hpp).
source "$(dirname "$0")/crossover_common.inc"

# hold_lock VM PID: writes "held by PID" into VM's producer lock.
hold_lock() {
	python3 - "$1" "$2" <<'PY' || fail "cannot write $1's producer lock"
import mmap, os, struct, sys
pid, holder = int(sys.argv[1]), int(sys.argv[2])
fd_dir = f"/proc/{pid}/fd"
for fd in os.listdir(fd_dir):
    if os.readlink(f"{fd_dir}/{fd}").startswith("/memfd:xover-nic-state-"):
        with open(f"{fd_dir}/{fd}", "r+b") as page:
            m = mmap.mmap(page.fileno(), 4096)
            m[328:336] = struct.pack("<Q", holder << 32 | 0x5eed)
            m.close()
        sys.exit(0)
sys.exit("no state memfd in " + fd_dir)
PY
}
# registered NAME: waits until the broker lists VM NAME.
registered() {
	local i
	for i in $(seq 300); do [ -n "$(vmpid "$1")" ] && return; sleep 0.1; done
	fail "$1 never registered"
}
N=2000

# --- a dead holder
RX=52:54:00:d1:00:01; TX=52:54:00:d1:00:02
vm deadrx e1000 $RX deadtx "role=rx count=$N timeout_ms=8000 start_timeout_ms=30000"
registered deadrx
sleep 0 & dead=$!; wait $dead  # a pid that names nobody now
hold_lock "$(vmpid deadrx)" "$dead"
vm deadtx e1000 $TX deadrx "role=tx count=$N size=64 dst=$RX timeout_ms=8000"
[ "$(wait_vm deadtx)" = 0 ] && [ "$(wait_vm deadrx)" = 0 ] || fail "the pair with a dead lock holder failed"
result deadrx | grep -q "frames=$N .*errors=0 lost=0" || fail "frames lost past a dead holder: $(result deadrx)"
[ "$(stat deadtx xover_tx_frames)" = $N ] || fail "not every frame crossed: $(stat deadtx xover_tx_frames) of $N"
[ "$(stat deadtx xover_dropped_peer_locked)" = 0 ] || fail "frames dropped at a locked ring"
echo "ok: a lock whose holder died is recovered: $N of $N frames, lossless"

# --- a live holder, then gone
RX=52:54:00:d1:01:01; TX=52:54:00:d1:01:02
vm liverx virtio $RX livetx "role=rx count=$N timeout_ms=15000 start_timeout_ms=30000"
registered liverx
sleep 1000 >/dev/null 2>&1 & holder=$!  # not holding ctest's output open if the test fails
lib_pids+=("$holder")  # killed at exit, whatever happens
hold_lock "$(vmpid liverx)" "$holder"
vm livetx virtio $TX liverx "role=tx count=$N size=64 dst=$RX timeout_ms=15000"
wait_links 1 "the pair with a live lock holder"
sleep 2  # the sender's frames meet the held lock
kill -9 "$holder"; wait "$holder" 2>/dev/null
[ "$(wait_vm livetx)" = 0 ] && [ "$(wait_vm liverx)" = 0 ] || fail "the pair with a live lock holder failed"
result liverx | grep -q "frames=$N .*errors=0 lost=0" || fail "frames lost at a live holder: $(result liverx)"
busy=$(stat livetx xover_busy_peer_locked)
[ "${busy:-0}" -gt 0 ] || fail "the sender never met the held lock (busy_peer_locked=$busy)"
[ "$(stat livetx xover_dropped_peer_locked)" = 0 ] || fail "frames dropped at a locked ring"
echo "ok: a live holder is waited out, never displaced: $N of $N frames, busy_peer_locked=$busy"
