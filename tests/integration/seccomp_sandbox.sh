#!/bin/bash
# labels: integration security kvm
# The seccomp sandbox (vmm/seccomp.hpp). A VM and a broker load their
# filter once set up; every other test runs with it on (the default,
# --seccomp kill). Here:
# - the test-only probe (XOVER_TEST_SECCOMP_PROBE=1) makes one syscall no
#   profile allows: under kill the process dies of SIGSYS; under log and
#   off it goes on; the filter itself is not weakened for the probe;
# - the thread probes (=vcpu, =io) make one the VMM allows and that kind
#   of thread does not: its own filter, stacked on the VMM's, kills it;
# - VMs that log at run time (a crossover link coming up) survive under
#   kill: logging needs nothing new;
# - a bad --seccomp value, and a bad seccomp key in TOML, are refused.
set -u
B=${XOVER_BUILD:?}
X=$B/xover; H=$B/guests/hello.elf; G=$B/guests/nettest.elf
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
[ -f "$H" ] && [ -f "$G" ] || { echo "SKIP: guests not built"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for mode in kill log off; do
	XOVER_TEST_SECCOMP_PROBE=1 timeout 30 "$X" run --seccomp $mode --kernel "$H" --cmdline hi >"$tmp/$mode.out" 2>&1
	rc=$?
	if [ $mode = kill ]; then
		[ $rc = 159 ] || fail "probe under kill: exit status $rc, expected 159 (SIGSYS)"
	else
		[ $rc = 0 ] || fail "probe under $mode: exit status $rc"
		grep -q "hello from xover" "$tmp/$mode.out" || fail "probe under $mode: the guest did not run"
	fi
	echo "ok: VM probe under --seccomp $mode: exit status $rc"
done
# The default is kill.
XOVER_TEST_SECCOMP_PROBE=1 timeout 30 "$X" run --kernel "$H" --cmdline hi >/dev/null 2>&1
rc=$?
[ $rc = 159 ] || fail "probe with no --seccomp: exit status $rc, expected 159 (kill is the default)"
echo "ok: kill is the default"

# Each thread kind's own filter (vmm/seccomp.hpp: ThreadKind): the thread
# probe makes a syscall the VMM allows and that kind of thread does not.
for kind in vcpu io; do
	XOVER_TEST_SECCOMP_PROBE=$kind timeout 30 "$X" run --kernel "$H" --cmdline hi >"$tmp/probe-$kind.out" 2>&1
	rc=$?
	[ $rc = 159 ] || fail "the $kind thread's probe: exit status $rc, expected 159 (SIGSYS)"
	echo "ok: the $kind thread's own filter kills what its process allows and it does not"
done

# The broker: probed once it listens.
mkdir -m 700 "$tmp/b"
XOVER_TEST_SECCOMP_PROBE=1 timeout 10 "$X" broker --broker "$tmp/b/b.sock" >"$tmp/broker.out" 2>&1
rc=$?
[ $rc = 159 ] || fail "broker probe under kill: exit status $rc, expected 159"
XOVER_TEST_SECCOMP_PROBE=1 timeout 3 "$X" broker --seccomp log --broker "$tmp/b/b.sock" >"$tmp/broker-log.out" 2>&1
rc=$?
[ $rc = 124 ] || fail "broker probe under log: exit status $rc, expected it to keep serving (124 from timeout)"
echo "ok: broker probe: killed under kill, serving under log"

# Run-time logging: a crossover pair at --log-level info logs its link
# coming up (on the I/O thread, long after the filter was loaded); the
# first log line's time stamp needs the time zone, loaded before.
mkdir -m 700 "$tmp/x"
"$X" broker --broker "$tmp/x/b.sock" >"$tmp/xb.out" 2>&1 &
bpid=$!
for i in $(seq 100); do [ -S "$tmp/x/b.sock" ] && break; sleep 0.1; done
pair() {  # NAME PEER CMDLINE MAC
	timeout 60 "$X" run --name "$1" --broker "$tmp/x/b.sock" --kernel "$G" --cmdline "$3" --log-level info \
		--nic "e1000,mac=$4,crossover=$2" >"$tmp/$1.out" 2>&1
	echo $? >"$tmp/$1.rc"
}
pair a b "role=rx count=100 timeout_ms=10000" 52:54:00:cd:00:01 &
sleep 0.3
pair b a "role=tx count=100 size=64 dst=52:54:00:cd:00:01 timeout_ms=10000" 52:54:00:cd:00:02 &
for i in $(seq 300); do [ -s "$tmp/a.rc" ] && [ -s "$tmp/b.rc" ] && break; sleep 0.1; done
kill $bpid 2>/dev/null; wait $bpid 2>/dev/null
[ "$(cat "$tmp/a.rc")" = 0 ] && [ "$(cat "$tmp/b.rc")" = 0 ] ||
	fail "a crossover pair that logs at run time: exit status $(cat "$tmp/a.rc") / $(cat "$tmp/b.rc"): $(tail -3 "$tmp/a.out")"
grep -q "link .* up" "$tmp/a.out" || fail "no run-time log line: $(cat "$tmp/a.out")"
echo "ok: VMs that log at run time survive the filter: $(grep -o 'crossover: link .* up.*' "$tmp/a.out" | head -1)"

timeout 10 "$X" run --seccomp maybe --kernel "$H" >"$tmp/bad.out" 2>&1 && fail "--seccomp maybe was accepted"
grep -q "is not a seccomp mode" "$tmp/bad.out" || fail "no clear error: $(cat "$tmp/bad.out")"
printf 'kernel = "%s"\nseccomp = "strict"\n' "$H" >"$tmp/bad.toml"
timeout 10 "$X" run --config "$tmp/bad.toml" >"$tmp/bad-toml.out" 2>&1 && fail "seccomp = \"strict\" was accepted"
grep -q "is not a seccomp mode" "$tmp/bad-toml.out" || fail "no clear TOML error: $(cat "$tmp/bad-toml.out")"
echo "ok: bad seccomp values refused: $(head -1 "$tmp/bad.out")"
echo PASS
