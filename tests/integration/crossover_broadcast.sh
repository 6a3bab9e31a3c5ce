#!/bin/bash
# labels: integration crossover kvm
# One-to-many: A is linked to B and C (A lists both; B and C list A) and
# sends broadcast frames (dst ff:ff:ff:ff:ff:ff). Each receiver gets every
# one of them in order — none lost, none duplicated — although the rings of
# two receivers fill at different moments (a group frame waits for a full
# peer instead of dropping it, and goes to each peer exactly once).
# Both receiver models: B is an e1000, C a virtio-net; A an e1000.
source "$(dirname "$0")/crossover_common.inc"
N=${XOVER_BCAST_FRAMES:-5000}
A=52:54:00:c5:00:01; Bm=52:54:00:c5:00:02; Cm=52:54:00:c5:00:03
vm bb e1000 $Bm aa "role=rx count=$N timeout_ms=20000"
vm cc virtio $Cm aa "role=rx count=$N timeout_ms=20000"
# Both receivers registered (they wait for link up) before the sender starts.
for i in $(seq 300); do "$X" status --broker "$BROKER" 2>/dev/null | grep -q "^VMs: 2" && break; sleep 0.1; done
vm aa e1000 $A bb+cc "role=tx count=$N size=128 dst=ff:ff:ff:ff:ff:ff timeout_ms=20000"
arc=$(wait_vm aa) brc=$(wait_vm bb) crc=$(wait_vm cc)
[ "$arc" = 0 ] || fail "sender exit status $arc"
[ "$brc" = 0 ] && [ "$crc" = 0 ] || fail "receivers: bb=$brc cc=$crc"
for r in bb cc; do
	result $r | grep -q "frames=$N .*errors=0 lost=0" || fail "$r: $(result $r)"
done
[ "$(stat aa xover_links_made)" = 2 ] || fail "sender made $(stat aa xover_links_made) links, expected 2"
[ "$(stat aa xover_tx_group_frames)" = $N ] || fail "group frames: $(stat aa xover_tx_group_frames), expected $N"
[ "$(stat aa xover_tx_frames)" = $((2 * N)) ] || fail "crossover frames: $(stat aa xover_tx_frames), expected $((2 * N))"
echo "ok: $N broadcast frames from aa reached bb (e1000) and cc (virtio-net), each complete and in order;" \
	"group retries=$(stat aa xover_group_retries) peer timeouts=$(stat aa xover_group_peer_timeouts)"
echo PASS
