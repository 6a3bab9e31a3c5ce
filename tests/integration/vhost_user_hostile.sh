#!/bin/bash
# labels: integration vhost-user qemu
# The vhost-user back-end against a hostile front-end and against deaths:
# - a front-end that sends malformed, truncated or oversized messages, fds
#   where none belong, memory tables and ring addresses out of range,
#   unknown requests, descriptors outside the memory it shared, memory
#   that cannot be shared: each session is refused with a log line naming
#   it, and the back-end goes on serving (vhost_user_frontend.py);
# - a back-end killed under a running QEMU VM: the VM keeps running, a new
#   back-end on the same socket takes over (QEMU reconnects) and frames
#   flow again, lossless;
# - a front-end (QEMU) killed mid-stream: its back-end and the peer's go
#   on, and the next pair runs lossless.
# All of it under the back-end's seccomp profile (kill). KVM is not needed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"
command -v python3 >/dev/null || fail "python3 is needed (the hostile front-end)"

front=$(dirname "$0")/vhost_user_frontend.py
mac_a=52:54:00:78:00:01
mac_b=52:54:00:78:00:02
vu_broker

# The back-end runs under its seccomp profile (kill): a syscall outside it
# ends the process.
XOVER_TEST_SECCOMP_PROBE=1 start probe 20 "$X" vhost-user --socket "$tmp/probe.sock" --name probe
[ "$(wait_vm probe 20)" = $((128 + 31)) ] || fail "a syscall outside the back-end's profile did not kill it (status $(cat "$tmp/probe.rc"))"
echo "ok the back-end runs under seccomp: a forbidden syscall is SIGSYS"

vu_backend qh "virtio-net,crossover=qa"
python3 "$front" "$tmp/qh.sock" || fail "the hostile front-end's cases"
refusals=$(grep -c "session ended:" "$tmp/qh.out")
[ "$refusals" -ge 14 ] || fail "only $refusals sessions were refused with a message"
grep -q "session ended: SET_VRING_ADDR: ring 0's used ring .* lies outside the memory table" "$tmp/qh.out" ||
	fail "no clear message for a ring outside the memory table"
echo "ok hostile front-end: $refusals sessions refused, each with a message; the back-end still serves"

vu_backend qa "virtio-net,mac=$mac_a,crossover=qb"
vu_backend qb "virtio-net,mac=$mac_b,crossover=qa"

# A back-end dies under its VM; a new one takes over the socket.
# (Its wait for a first frame covers the kill, the reconnect and tx1's boot.)
vu_qemu rx1 "$tmp/qb.sock" $mac_b "nic=virtio role=rx count=20000 timeout_ms=$((20000 * EMULATION_SCALE)) tsc_khz=$tsc"
wait_output rx1 "link=up" 60 || fail "the receiver never came up"
wait_output qb "device started" 10 || fail "qb's device never started"
pkill -9 -f -- "--socket $tmp/qb.sock" || fail "no qb back-end to kill"
sleep 1
[ -s "$tmp/rx1.rc" ] && fail "QEMU ended when its back-end died (status $(cat "$tmp/rx1.rc"))"
mv "$tmp/qb.out" "$tmp/qb-killed.log"
rm -f "$tmp/qb.rc"
vu_backend qb "virtio-net,mac=$mac_b,crossover=qa"
wait_output qb "device started" 20 || fail "QEMU never reconnected to the new back-end"
vu_qemu tx1 "$tmp/qa.sock" $mac_a "nic=virtio role=tx count=20000 dst=$mac_b tsc_khz=$tsc"
expect tx1 frames=20000
expect rx1 frames=20000 errors=0 lost=0
echo "ok back-end killed under a running VM: QEMU reconnected to a new one, 20000 frames, none lost"

# wait_new NAME PATTERN SECONDS: wait_output over what back-end NAME
# printed since mark NAME (its log already holds the first pair's lines).
declare -A marks
mark() { marks[$1]=$(wc -l <"$tmp/$1.out"); }
wait_new() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		tail -n +$((marks[$1] + 1)) "$tmp/$1.out" | grep -aqE "$2" && return 0
		sleep 0.1
	done
	return 1
}

# A front-end dies mid-stream. (The receiver waits for frames long enough
# for the checks below; it is killed after them.)
vu_qemu rx2 "$tmp/qb.sock" $mac_b "nic=virtio role=rx count=400000 timeout_ms=$((30000 * EMULATION_SCALE)) tsc_khz=$tsc"
wait_output rx2 "link=up" 60 || fail "the second receiver never came up"
mark qa
vu_qemu tx2 "$tmp/qa.sock" $mac_a "nic=virtio role=tx count=400000 gap_ns=20000 dst=$mac_b tsc_khz=$tsc"
wait_new qa "link .* up" $((30 * EMULATION_SCALE)) || fail "qa never linked"
sleep 2
mark qa
pkill -9 -f -- "chardev socket,id=c0,path=$tmp/qa.sock" || fail "no sender QEMU to kill"
wait_new qa "front-end left" 10 || fail "qa never saw its front-end go"
sleep 1
[ -s "$tmp/rx2.rc" ] && fail "the receiving QEMU ended when its peer died (status $(cat "$tmp/rx2.rc"))"
python3 "$front" "$tmp/qa.sock" --alive || fail "qa stopped answering after its front-end died"
python3 "$front" "$tmp/qb.sock" --alive && fail "qb answered a second front-end while its VM is connected"
pkill -9 -f -- "chardev socket,id=c0,path=$tmp/qb.sock"
vu_qemu rx3 "$tmp/qb.sock" $mac_b "nic=virtio role=rx count=20000 timeout_ms=$((20000 * EMULATION_SCALE)) tsc_khz=$tsc"
wait_output rx3 "link=up" 60 || fail "the third receiver never came up"
vu_qemu tx3 "$tmp/qa.sock" $mac_a "nic=virtio role=tx count=20000 dst=$mac_b tsc_khz=$tsc"
expect tx3 frames=20000
expect rx3 frames=20000 errors=0 lost=0
echo "ok front-end killed mid-stream: both back-ends went on, the next pair lost nothing"
echo PASS
