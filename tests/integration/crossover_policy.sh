#!/bin/bash
# labels: integration crossover kvm
# Who gets a link: a VM that is not a configured peer (and does not list
# the other) gets none, and its frames go to its backend; a second VM with
# a registered VM's name is refused before it runs.
source "$(dirname "$0")/crossover_common.inc"
A=52:54:00:c3:00:01; C=52:54:00:c3:00:03
vm a e1000 $A b "role=rx count=10 timeout_ms=12000"; sleep 0.3
# c lists only "d" (absent), a lists only "b": no link between a and c.
# c has a physical path (udp to a port nobody reads), so its link is up.
port=$((20000 + $$ % 20000))
NICX="backend=udp:127.0.0.1:$port@127.0.0.1:$((port + 1))" vm c e1000 $C d "role=tx count=10 size=64 dst=$A timeout_ms=3000"
wait_vm c >/dev/null
# The broker's own record: both VMs registered while c ran, no link made.
grep -q "VM 'a' .*registered" "$tmp/broker.log" && grep -q "VM 'c' .*registered" "$tmp/broker.log" ||
	fail "a and c not both registered"
grep -q "link .* up" "$tmp/broker.log" && fail "unexpected link: $(grep 'link .* up' "$tmp/broker.log")"
[ "$(stat c xover_tx_frames)" = 0 ] || fail "c sent frames over a crossover link"
[ "$(stat c xover_tx_backend_frames)" = 10 ] || fail "c's frames did not go to its backend"
echo "ok: no link between VMs that do not list each other; frames went to the backend"
# a's NIC has no link and backend none: its guest saw the link down.
wait_vm a >/dev/null
grep -q "link=down" "$tmp/a.out" || fail "a reported link up without any link"
echo "ok: crossover-only NIC without a link shows link down"
rm -f "$tmp/a.rc"

vm a e1000 $A b "role=rx count=1 timeout_ms=3000"
# The first 'a' must be registered before the duplicate starts (a fixed
# 0.5 s was too short where the host is emulated: the duplicate came first).
for i in $(seq 300); do [ -n "$(vmpid a)" ] && break; sleep 0.1; done
[ -n "$(vmpid a)" ] || fail "the first 'a' never registered"
( timeout 30 "$X" run --name a --broker "$BROKER" --kernel "$G" --cmdline "role=rx count=1 timeout_ms=1000" \
	--nic e1000,mac=52:54:00:c3:00:07,crossover=b >"$tmp/dup.out" 2>&1; echo $? >"$tmp/dup.rc" )
[ "$(cat "$tmp/dup.rc")" != 0 ] || fail "a duplicate VM name was accepted"
grep -qi "refused" "$tmp/dup.out" || fail "no refusal message: $(cat "$tmp/dup.out")"
echo "ok: duplicate VM name refused: $(grep -i refused "$tmp/dup.out" | head -1)"
wait_vm a >/dev/null
echo PASS
