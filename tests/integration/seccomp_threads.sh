#!/bin/bash
# labels: integration security
# Per-thread seccomp filters (vmm/seccomp.hpp: ThreadKind) in the real
# binary, no KVM needed: the broker's control API worker loads its own
# filter, stacked on the broker's, at its first request. Its status is
# served through it; the thread probe (XOVER_TEST_SECCOMP_PROBE=api: a
# syscall the broker allows and that thread does not) kills the broker
# under kill, and under log it goes on serving. The VMM's vCPU and I/O
# threads get theirs the same way (seccomp_sandbox.sh; the unit tests
# tagged [seccomp] check each kind's list without KVM).
. "$(dirname "$0")/lib.sh"
[ -n "$B" ] && [ -x "$X" ] || skip "xover not built (XOVER_BUILD)"
mkdir -m 700 "$tmp/run"
sock=$tmp/run/broker.sock

# broker NAME [ENV=VALUE...] -- [broker options...]: a broker, then waits for its socket.
broker() {
	local name=$1 i
	shift
	start "$name" 30 env "$@" "$X" broker --broker "$sock" --log-level info
	for i in $(seq 100); do [ -S "$sock" ] && [ -S "$tmp/run/broker.api.sock" ] && return; sleep 0.1; done
	fail "$name: the broker did not listen"
}
# stop_broker: SIGTERM to the broker on $sock (not to its `timeout`).
stop_broker() { pkill -TERM -f -- "^$X broker --broker $sock"; }
wait_rc() {
	local i
	for i in $(seq 100); do [ -s "$tmp/$1.rc" ] && { cat "$tmp/$1.rc"; return; }; sleep 0.1; done
	echo none
}

# Under kill, no probe: the worker's filter allows what serving needs.
broker plain XOVER_TEST_SECCOMP_PROBE=
for i in 1 2 3; do
	curl -sf --unix-socket "$tmp/run/broker.api.sock" http://localhost/status | grep -q '"vms"' ||
		fail "request $i: the broker's API did not answer under its worker's filter"
done
"$X" status --broker "$sock" | grep -q '^Links: ' || fail "xover status did not answer"
stop_broker
rc=$(wait_rc plain)
[ "$rc" = 0 ] || fail "the broker under kill, after serving: exit $rc"
echo "ok the API worker serves under its own filter (3 requests, then a clean exit)"

# The probe: killed at the worker's first request.
broker probe XOVER_TEST_SECCOMP_PROBE=api
curl -s --unix-socket "$tmp/run/broker.api.sock" http://localhost/status >/dev/null
rc=$(wait_rc probe)
[ "$rc" = 159 ] || fail "the API worker's probe under kill: exit $rc, expected 159 (SIGSYS)"
echo "ok a syscall the broker allows and its API worker does not: SIGSYS (exit 159)"

# Under log: logged, and the broker goes on.
rm -f "$sock" "$tmp/run/broker.api.sock"
start probe-log 30 env XOVER_TEST_SECCOMP_PROBE=api "$X" broker --broker "$sock" --seccomp log
for i in $(seq 100); do [ -S "$tmp/run/broker.api.sock" ] && break; sleep 0.1; done
for i in 1 2; do
	curl -sf --unix-socket "$tmp/run/broker.api.sock" http://localhost/status | grep -q '"vms"' ||
		fail "under log, request $i: no answer"
done
stop_broker
rc=$(wait_rc probe-log)
[ "$rc" = 0 ] || fail "the probe under log: exit $rc, expected the broker to go on and exit 0"
echo "ok under --seccomp log the probe is logged and the broker goes on"
echo PASS
