#!/bin/bash
# labels: integration security vhost-user qemu
# The jail (--uid, --gid, --chroot, --namespaces; vmm/jail.hpp): a broker
# and two vhost-user back-ends, each in a chroot of its own, in fresh pid,
# mount and network namespaces, as user nobody, still link two QEMU VMs
# (nettest) losslessly and answer `xover status`; the seccomp filter still
# kills in the jail, and the pid-namespace parent reports it; bad jail
# flags get clear errors. KVM is not needed (QEMU falls back to TCG).
# Environment: COUNT (20000).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"

count=${COUNT:-20000}
mac_a=52:54:00:7a:00:01
mac_b=52:54:00:7a:00:02
. "$(dirname "$0")/jail.inc"
for n in qa qb probe; do mkdir "$tmp/jail-$n"; done
[ -f "$B/guests/hello.elf" ] || skip "hello.elf not built"

jail_broker
# shellcheck disable=SC2046
vu_backend qa "virtio-net,mac=$mac_a,crossover=qb" $(jail_args qa)
# shellcheck disable=SC2046
vu_backend qb "virtio-net,mac=$mac_b,crossover=qa" $(jail_args qb)
check_jail qa
check_jail qb

# Two QEMU VMs through the jailed back-ends and broker: every frame arrives.
vu_qemu rx "$tmp/qb.sock" $mac_b "nic=virtio role=rx tsc_khz=$tsc count=$count"
wait_output rx "link=up" 60 || fail "the receiver never came up"
vu_qemu tx "$tmp/qa.sock" $mac_a "nic=virtio role=tx dst=$mac_b tsc_khz=$tsc count=$count size=256"
expect tx frames="$count"
expect rx frames="$count" errors=0 lost=0
wait_stops qa 1
wait_stops qb 1
[ "$(last_stat qa xover_tx_frames)" = "$count" ] || fail "qa: xover_tx_frames=$(last_stat qa xover_tx_frames), expected $count"
[ "$(last_stat qb xover_rx_frames)" = "$count" ] || fail "qb: xover_rx_frames=$(last_stat qb xover_rx_frames), expected $count"
grep -q "link .* up: q[ab]#0 <-> q[ab]#0 (copy, static)" "$tmp/broker.out" || fail "the jailed broker never linked qa and qb"
echo "ok $count frames from qa to qb, through jailed back-ends and broker"

# The broker's status, from its jail's user and from root (its API asks
# the broker on its socket, from inside the jail).
as_jail_user "$X" status --broker "$BROKER" >"$tmp/status-nobody.txt" || fail "status as $jail_user failed"
grep -q "^Links: " "$tmp/status-nobody.txt" || fail "status as $jail_user: $(cat "$tmp/status-nobody.txt")"
"$X" status --broker "$BROKER" --json | grep -q '"vms"' || fail "the jailed broker's status API does not answer root"
echo "ok the jailed broker answers status"

# SIGTERM to the pid-namespace parent reaches the jailed broker: a clean stop.
kill -TERM "$(jail_outer broker)"
for i in $(seq 100); do [ -s "$tmp/broker.rc" ] && break; sleep 0.1; done
[ "$(cat "$tmp/broker.rc" 2>/dev/null)" = 0 ] || fail "the jailed broker's SIGTERM exit: $(cat "$tmp/broker.rc" 2>/dev/null)"
[ ! -e "$BROKER" ] || fail "the jailed broker left its socket"
echo "ok SIGTERM stops the jailed broker cleanly (exit 0, its socket removed)"

# A jailed broker in a network namespace of its own still serves its tap
# uplink (opened before) and reports the tap's state from the host's
# namespace, where the tap is.
tap=xj$$
ip tuntap add "$tap" mode tap || fail "cannot create tap $tap"
at_exit "ip link delete $tap"
ip link set "$tap" up
mkdir -m 700 "$tmp/uplinkrun" "$tmp/jail-uplink"
chmod 755 "$tmp/jail-uplink"
chown "$jail_uid" "$tmp/uplinkrun"
# shellcheck disable=SC2046
start uplink 60 "$X" broker --broker "$tmp/uplinkrun/broker.sock" --uplink "tap:$tap" $(jail_args uplink)
for i in $(seq 100); do "$X" status --broker "$tmp/uplinkrun/broker.sock" >/dev/null 2>&1 && break; sleep 0.1; done
check_jail uplink
"$X" status --broker "$tmp/uplinkrun/broker.sock" | grep -q "^Uplink: tap:$tap (link up" ||
	fail "the jailed broker's uplink: $("$X" status --broker "$tmp/uplinkrun/broker.sock" | grep -i uplink)"
ip link set "$tap" down
"$X" status --broker "$tmp/uplinkrun/broker.sock" | grep -q "^Uplink: tap:$tap (link down" ||
	fail "the jailed broker does not see its uplink go down"
kill -TERM "$(jail_outer uplink)"
echo "ok a jailed broker in its own network namespace serves its tap uplink and sees its state"

# Seccomp still rules in the jail: a forbidden syscall (the test-only
# probe) kills the jailed process, and its parent exits with 128+SIGSYS.
# shellcheck disable=SC2046
XOVER_TEST_SECCOMP_PROBE=1 timeout 20 "$X" broker --broker "$tmp/run/probe.sock" $(jail_args probe) >"$tmp/probe.out" 2>&1
rc=$?
[ "$rc" = 159 ] || fail "a forbidden syscall in the jail: exit $rc, expected 159 (SIGSYS)"
echo "ok a forbidden syscall in the jail kills it (exit 159)"

# `xover up` hands its jail to the broker it starts (and to each VM: its
# VMs need KVM, jail_vm.sh runs them). Here only the broker is looked at,
# whatever the VMs do (without KVM they fail at once; with it they wait).
jail_up_file "$B/guests/nettest.elf" "role=rx count=1 timeout_ms=60000" "role=rx count=1 timeout_ms=60000"
timeout 90 "$X" up "$tmp/up.toml" --chroot "$tmp/jail-up" --uid $jail_user --namespaces pid,net >"$tmp/up.out" 2>&1 &
up_pid=$!
for i in $(seq 600); do
	"$X" status --broker "$tmp/uprun/broker.sock" >/dev/null 2>&1 && break
	sleep 0.1
done
check_jail up
"$X" status --broker "$tmp/uprun/broker.sock" >/dev/null || fail "the broker xover up started does not answer"
kill -TERM $up_pid 2>/dev/null
wait $up_pid
for p in $(pgrep -f -- "--chroot $tmp/jail-up "); do kill -TERM "$p" 2>/dev/null; done
echo "ok xover up starts its broker in the jail it was given"

# Bad jail flags: a clear error, status 1, nothing started.
bad() {
	local want=$1 out rc
	shift
	out=$(timeout 10 "$X" broker --broker "$tmp/run/bad.sock" "$@" 2>&1)
	rc=$?
	[ "$rc" = 1 ] || fail "xover broker $*: exit $rc ($out), expected 1"
	grep -q -- "$want" <<<"$out" || fail "xover broker $*: \"$out\", expected \"$want\""
	echo "ok $* -> $want"
}
bad "--chroot: $tmp/none is not a directory" --chroot "$tmp/none"
bad '--uid: no user named "no-such-user"' --uid no-such-user
bad '"ipc" is not a namespace' --namespaces pid,ipc
mkdir -m 777 "$tmp/jail-open"
bad "--chroot: $tmp/jail-open must belong to root and be writable by root only" --chroot "$tmp/jail-open"
mkdir -m 700 "$tmp/jail-closed"
bad "--chroot $tmp/jail-closed: uid $jail_uid cannot enter it" --chroot "$tmp/jail-closed" --uid $jail_user
out=$(as_jail_user timeout 10 "$X" broker --broker "$tmp/run/bad.sock" --namespaces net 2>&1)
grep -q "need root" <<<"$out" || fail "an unprivileged user asking for a jail: \"$out\""
echo "ok an unprivileged user asking for a jail: $out"
echo PASS
