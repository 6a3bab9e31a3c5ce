#!/bin/bash
# labels: integration security kvm
# `xover run` in the jail (--uid, --chroot, --namespaces; vmm/jail.hpp):
# two nettest VMs, each in a chroot of its own, in fresh pid, mount and
# network namespaces, as user nobody, linked through a jailed broker:
# every frame arrives (e1000 to virtio-net); a jailed VM's control API
# answers; SIGTERM reaches it through its pid-namespace parent (exit 143);
# `xover up` runs a jailed pair; the seccomp probe still kills a jailed VM
# (exit 159).
# Environment: COUNT (20000; a quarter where guests are emulated).
. "$(dirname "$0")/lib.sh"
need_xover
count=${COUNT:-$(emulated_count 20000)}
mac_a=52:54:00:7b:00:01
mac_b=52:54:00:7b:00:02
BROKER=$tmp/run/broker.sock
mkdir -m 700 "$tmp/run"
. "$(dirname "$0")/jail.inc"
for n in a b c probe; do mkdir "$tmp/jail-$n"; done
jail_broker

# shellcheck disable=SC2046  # jail_args is several words
xover_vm a "role=rx count=$count timeout_ms=30000" "virtio-net,mac=$mac_a,crossover=b" --broker "$BROKER" $(jail_args a)
# Its link comes up with b's: wait until its process has entered the jail.
for i in $(seq 300); do
	p=$(jailed a)
	[ -n "$p" ] && grep -Eq "^Uid:\s+$jail_uid\s" /proc/"$p"/status 2>/dev/null && break
	sleep 0.1
done
check_jail a
# shellcheck disable=SC2046
xover_vm b "role=tx count=$count size=256 dst=$mac_a" "e1000,mac=$mac_b,crossover=a" --broker "$BROKER" $(jail_args b)
expect b frames="$count"
expect a frames="$count" errors=0 lost=0
grep -q "link .* up: [ab]#0 <-> [ab]#0" "$tmp/broker.out" || fail "the jailed broker never linked a and b"
echo "ok $count frames from b to a, both jailed"

# A jailed VM's control API, made in its jail (next to the broker socket).
# shellcheck disable=SC2046
xover_vm c "role=rx count=1000000000 timeout_ms=600000" "virtio-net,mac=52:54:00:7b:00:03" --broker "$BROKER" $(jail_args c)
wait_output c "link=up" 30 || fail "c: never came up"
for i in $(seq 100); do [ -S "$tmp/run/vm.c.api.sock" ] && break; sleep 0.1; done
as_jail_user curl -sf --unix-socket "$tmp/run/vm.c.api.sock" http://localhost/vm | grep -q '"state": *"running"' ||
	fail "c: its control API does not answer"
echo "ok a jailed VM's control API answers"
kill -TERM "$(jail_outer c)"
for i in $(seq 100); do [ -s "$tmp/c.rc" ] && break; sleep 0.1; done
[ "$(cat "$tmp/c.rc" 2>/dev/null)" = 143 ] || fail "c: SIGTERM gave exit $(cat "$tmp/c.rc" 2>/dev/null), expected 143"
echo "ok SIGTERM reaches a jailed VM through its pid-namespace parent (exit 143)"

# `xover up` with a jail: its broker and both VMs jailed as nobody, linked.
jail_up_file "$NETTEST" "role=rx count=$count timeout_ms=30000" \
	"role=tx count=$count size=128 dst=52:54:00:7c:00:01 timeout_ms=30000"
timeout 120 "$X" up "$tmp/up.toml" --chroot "$tmp/jail-up" --uid $jail_user --namespaces pid,net >"$tmp/up.out" 2>&1 ||
	fail "xover up with a jail: exit $? ($(tail -5 "$tmp/up.out"))"
grep -q "\[u1\].*frames=$count .*lost=0" "$tmp/up.out" || fail "xover up with a jail: u1 did not get every frame"
grep -q "jail: uid $jail_uid" "$tmp/up.out" || fail "xover up's VMs did not jail themselves"
echo "ok xover up runs a jailed pair through its jailed broker"

# shellcheck disable=SC2046
XOVER_TEST_SECCOMP_PROBE=1 timeout 30 "$X" run --kernel "$B/guests/hello.elf" --cmdline hi $(jail_args probe) \
	>"$tmp/probe.out" 2>&1
rc=$?
[ "$rc" = 159 ] || fail "the seccomp probe in a jailed VM: exit $rc, expected 159 (SIGSYS)"
echo "ok a forbidden syscall kills a jailed VM (exit 159)"
echo PASS
