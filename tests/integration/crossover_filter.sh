#!/bin/bash
# labels: integration crossover kvm
# A crossover peer writing into an e1000's RX ring honours the receiving
# guest's own receive filter, as the wire would: bb's guest listens on
# another address than the one its link was made for (RAL0 rewritten,
# nettest ral0=), so aa's unicast frames to bb's configured MAC are dropped
# and counted on both sides, never written into bb's ring. dd does the same
# in promiscuous mode (RCTL.UPE, nettest promisc=1) and gets every frame.
# The senders start first, so every frame meets the receiver's final
# filter (a receiver's ring takes nothing before its guest sets RCTL.EN,
# which nettest does after programming RAL0). They stay up a while after
# their last frame (hold_ms): all of them are filtered as soon as the
# receiver's ring is live, and a sender that left at once would take the
# link down before the receiver's guest has seen it up.
source "$(dirname "$0")/crossover_common.inc"
N=${XOVER_FILTER_FRAMES:-300}
A=52:54:00:c6:00:01; Bm=52:54:00:c6:00:02; C=52:54:00:c6:00:03; Dm=52:54:00:c6:00:04
ELSEWHERE=52:54:00:c6:00:99
vm aa e1000 $A bb "role=tx count=$N size=128 dst=$Bm timeout_ms=30000 hold_ms=4000"
vm cc e1000 $C dd "role=tx count=$N size=128 dst=$Dm timeout_ms=30000 hold_ms=4000"
for i in $(seq 300); do "$X" status --broker "$BROKER" 2>/dev/null | grep -q "^VMs: 2" && break; sleep 0.1; done
# bb expects nothing: it gives up 3 s after its ring went live, which is
# only a bound on the wait; the assertions are on counters and contents.
vm bb e1000 $Bm aa "role=rx count=$N ral0=$ELSEWHERE start_timeout_ms=3000"
vm dd e1000 $Dm cc "role=rx count=$N ral0=$ELSEWHERE promisc=1 timeout_ms=20000"
arc=$(wait_vm aa) brc=$(wait_vm bb) crc=$(wait_vm cc) drc=$(wait_vm dd)
[ "$arc" = 0 ] && [ "$crc" = 0 ] || fail "senders: aa=$arc cc=$crc"
grep -q "mac=$ELSEWHERE" "$tmp/bb.out" || fail "bb did not move to $ELSEWHERE"
[ "$brc" = 1 ] && result bb | grep -q "frames=0 " || fail "bb received frames its filter rejects: $(result bb)"
[ "$(stat aa xover_dropped_filtered)" = $N ] || fail "aa filtered $(stat aa xover_dropped_filtered), expected $N"
[ "$(stat bb xover_rx_peer_filtered)" = $N ] || fail "bb saw $(stat bb xover_rx_peer_filtered) filtered, expected $N"
[ "$(stat aa xover_tx_frames)" = 0 ] || fail "aa wrote $(stat aa xover_tx_frames) frames into bb's ring"
[ "$drc" = 0 ] && result dd | grep -q "frames=$N .*errors=0 lost=0" || fail "dd (promiscuous): $(result dd)"
[ "$(stat cc xover_dropped_filtered)" = 0 ] || fail "cc filtered $(stat cc xover_dropped_filtered) frames"
echo "ok: $N frames to a MAC bb's guest no longer listens on were filtered (aa and bb agree);" \
	"dd in promiscuous mode got all $N"
echo PASS
