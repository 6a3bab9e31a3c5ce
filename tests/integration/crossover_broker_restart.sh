#!/bin/bash
# labels: integration crossover kvm
# The broker SIGKILLed mid-stream and started again: the link keeps
# carrying frames while no broker runs (lossless, every frame's sequence
# and checksum intact), both VMs register again and the new broker adopts
# their link (no second LinkUp); a third VM then links to a running one;
# and a VM killed while no broker ran makes its survivor get LinkDown
# after the restart, which can then link again with a new peer.
source "$(dirname "$0")/crossover_common.inc"
RX=52:54:00:c7:00:01; TX=52:54:00:c7:00:02; C=52:54:00:c7:00:03
S=52:54:00:c7:00:04; D=52:54:00:c7:00:05
broker_pid=${lib_pids[-1]}
status_json() { "$X" status --broker "$BROKER" --json 2>/dev/null; }
# crossed: frames the broker's links counted, both directions summed.
crossed() { status_json | grep -o '"frames":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'; }
restart_broker() {
	kill -9 "$broker_pid"
	wait "$broker_pid" 2>/dev/null
	"$X" status --broker "$BROKER" >/dev/null 2>&1 && fail "the killed broker still answers"
	sleep "$1"
	mv "$tmp/broker.log" "$tmp/broker-$broker_pid.log"
	start_broker
	broker_pid=${lib_pids[-1]}
}
# until SECONDS CONDITION...: polls CONDITION every 0.1 s.
until_ok() { local i; for i in $(seq $(($1 * 10))); do "${@:2}" && return 0; sleep 0.1; done; return 1; }
adopted_pair() { status_json | grep -q "\"b\":{\"vm\":\"$1\",\"nic\":0}.*\"origin\":\"adopted\"\|\"a\":{\"vm\":\"$1\",\"nic\":0},\"b\":{\"vm\":\"$2\".*\"origin\":\"adopted\""; }
registered_again() { status_json | grep -q "\"name\":\"$1\",\"pid\":[0-9]*,\"registration\":2,"; }

# 1. rx <- tx, paced to last ~15 s (times XOVER_TEST_TIME_SCALE: the checks
# below must see it still running); the broker is killed mid-stream.
N=500000
vm rx e1000 $RX tx+c "role=rx count=$N timeout_ms=20000"; sleep 0.3
vm tx virtio $TX rx "role=tx count=$N size=64 dst=$RX gap_ns=$((30000 * $EMULATION_SCALE)) timeout_ms=20000"
wait_links 1 "before the broker was killed"
sleep 1
before=$(crossed)
[ "$before" -gt 0 ] || fail "no frames crossed before the broker was killed"
restart_broker 2
echo "ok: broker killed after $before frames, a new one started 2 s later"

# 2. Both register again; the new broker adopts their link.
until_ok 10 registered_again rx || fail "rx did not register again: $(status_json)"
until_ok 10 registered_again tx || fail "tx did not register again: $(status_json)"
until_ok 5 adopted_pair tx rx || until_ok 1 adopted_pair rx tx || fail "the link was not adopted: $(status_json)"
[ "$(links)" = 1 ] || fail "links after the restart: $(links)"
grep -q "link .* adopted: " "$tmp/broker.log" || fail "no adoption in the new broker's log"
grep -q "link .* up: " "$tmp/broker.log" && fail "the new broker made the link again instead of adopting it"
after=$(crossed)
[ "$after" -gt "$before" ] || fail "the counters did not rise across the restart ($before, then $after)"
echo "ok: rx and tx registered again, link adopted; $((after - before)) more frames crossed"

# 3. A third VM asks for a link to a running one (rx lists it) and gets it.
vm c e1000 $C rx "role=rx count=1 timeout_ms=2000"
wait_links 2 "c's link to rx" 10
grep -q "link [0-9]* up: rx#0 <-> c#0" "$tmp/broker.log" || fail "no rx <-> c link in the broker's log"
echo "ok: a new VM linked to a running one after the restart"

# 4. The stream ends intact: nothing lost, every frame checked, no link
# down while it ran.
[ "$(wait_vm rx)" = 0 ] || fail "rx: $(result rx)"
[ "$(wait_vm tx)" = 0 ] || fail "tx: $(result tx)"
result rx | grep -q "frames=$N .*errors=0 lost=0" || fail "rx: $(result rx)"
grep -q "link [0-9]* down" "$tmp/tx.out" && fail "tx saw its link go down during the stream"
grep -q "registered again with the broker" "$tmp/rx.out" || fail "rx logged no new registration"
echo "ok: $(result rx)"
wait_vm c >/dev/null

# 5. A VM killed while no broker runs: its survivor gets LinkDown once the
# grace period ends, and links again when a peer of that name returns.
vm surv e1000 $S gone "role=rx count=10 timeout_ms=60000"; sleep 0.3
vm gone e1000 $D surv "role=rx count=10 timeout_ms=60000"
wait_links 1 "surv and gone"
gone_pid=$(vmpid gone)
[ -n "$gone_pid" ] || fail "cannot find gone's pid"
kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null
kill -9 "$gone_pid"
sleep 1
mv "$tmp/broker.log" "$tmp/broker-$broker_pid.log"
start_broker
broker_pid=${lib_pids[-1]}
until_ok 10 registered_again surv || fail "surv did not register again: $(status_json)"
until_ok 10 grep -q "link [0-9]* of surv#0 not adopted: VM 'gone' did not register again" "$tmp/broker.log" ||
	fail "the broker did not give up on surv's link to its dead peer"
wait_links 0 "a link to the dead VM" 2
echo "ok: surv was sent LinkDown for its peer killed while no broker ran"
# A new 'gone' links with surv and sends it the 10 frames it waits for.
rm -f "$tmp/gone.rc"
vm gone e1000 $D surv "role=tx count=10 size=64 dst=$S timeout_ms=5000 hold_ms=3000"  # stays linked while status is polled
# The broker's log, not a poll of its live links: on a loaded host the
# new 'gone' can link, send and leave between two polls.
until_ok 30 grep -q "link [0-9]* up: \(surv#0 <-> gone#0\|gone#0 <-> surv#0\)" "$tmp/broker.log" ||
	fail "surv did not link with a new 'gone'"
"$X" status --broker "$BROKER" | grep -q "^Broker: started .* links 1 formed, 0 adopted, 1 refused" ||
	fail "status history: $("$X" status --broker "$BROKER" | head -1)"
[ "$(wait_vm surv)" = 0 ] || fail "surv: $(result surv)"
result surv | grep -q "frames=10 .*errors=0 lost=0" || fail "surv: $(result surv)"
[ "$(stat surv xover_links_torn_down)" = 1 ] && [ "$(stat surv xover_links_made)" = 2 ] ||
	fail "surv: links made $(stat surv xover_links_made), torn down $(stat surv xover_links_torn_down)"
echo "ok: surv linked again with a new peer; $("$X" status --broker "$BROKER" | head -1)"
echo PASS
