#!/bin/bash
# labels: integration crossover kvm
# Ping/echo over a crossover link; a peer SIGKILLed mid-stream: the
# partner ends with a timeout failure (no hang, no crash), `xover status`
# shows the link gone; a restarted peer with the same name links again.
source "$(dirname "$0")/crossover_common.inc"
E=52:54:00:c2:00:01; P=52:54:00:c2:00:02

# 1. ping <-> echo (e1000 <-> virtio-net), then a SIGKILL mid-stream.
vm echo virtio $E ping "role=echo timeout_ms=3000"; sleep 0.3
vm ping e1000 $P echo "role=ping count=200 size=64 dst=$E timeout_ms=5000"
[ "$(wait_vm ping)" = 0 ] || fail "ping over the crossover failed: $(result ping)"
result ping | grep -q "frames=200 " || fail "ping: $(result ping)"
echo "ok: ping/echo e1000 <-> virtio-net: $(result ping)"
# echo timed out once ping left (3 s without frames): status 1 is its failure.
[ "$(wait_vm echo)" != timeout ] || fail "echo hung"

N=1000000
vm rx e1000 $E tx "role=rx count=$N timeout_ms=2000"; sleep 0.3
vm tx e1000 $P rx "role=tx count=$N size=64 dst=$E timeout_ms=20000"
wait_links 1 "before the kill"
sleep 1.5
txpid=$(cat "$tmp/broker.log" "$tmp"/*.out | grep -o "VM 'tx' (pid [0-9]*" | tail -1 | grep -o '[0-9]*$')
[ -n "$txpid" ] || fail "cannot find tx's pid"
kill -9 "$txpid"
rc=$(wait_vm rx)
[ "$rc" = 1 ] || fail "rx after its peer was killed: status $rc, expected 1 (timeout)"
grep -q "rx timeout" "$tmp/rx.out" || fail "rx did not report a timeout"
frames=$(result rx | grep -o ' frames=[0-9]*' | cut -d= -f2)
[ "$frames" -gt 0 ] || fail "no frames before the kill"
[ "$(stat rx xover_links_torn_down)" = 1 ] || fail "rx did not see the link go down"
echo "ok: peer SIGKILLed after $frames frames; rx ended with a timeout (status 1), link torn down"

# 3. The broker (if still running for a new VM) shows no stale link, and
# a restarted pair with the same names links again.
rm -f "$tmp/echo.rc" "$tmp/ping.rc"
vm echo virtio $E ping "role=echo timeout_ms=3000"; sleep 0.3
"$X" status --broker "$BROKER" | grep -q "^Links: 0" || fail "stale link after the kill: $("$X" status --broker "$BROKER")"
echo "ok: status shows no link while the peer is gone"
vm ping e1000 $P echo "role=ping count=50 size=64 dst=$E timeout_ms=5000"
[ "$(wait_vm ping)" = 0 ] || fail "restarted ping failed: $(result ping)"
echo "ok: restarted peer re-linked: $(result ping)"
wait_vm echo >/dev/null
echo PASS
