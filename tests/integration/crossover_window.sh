#!/bin/bash
# labels: integration crossover
# Window mode (zero copy), e1000 <-> e1000: both NICs expose a DMA window
# (BAR2) and nettest window=1 puts TX slot k / RX slot k at half offset
# k*2048. 20000 64-byte frames tx -> rx, none lost, no bad frame, and not
# one byte copied: every frame crossed in place (xover_window_frames), the
# halves were remapped onto the link's shared elements (xover_remaps), and
# every TX slot lent to the peer completed. Then teardown: the receiver
# SIGKILLed mid-stream — the sender gets its slots back and ends (no
# hang, no crash); the sender SIGKILLed — the receiver times out cleanly.
source "$(dirname "$0")/crossover_common.inc"
N=20000
RX=52:54:00:c9:00:01; TX=52:54:00:c9:00:02
NICX=mode=window

vm rx e1000 $RX tx "role=rx count=$N window=1 timeout_ms=20000"; sleep 0.3
vm tx e1000 $TX rx "role=tx count=$N size=64 dst=$RX window=1 timeout_ms=20000"
rrc=$(waitvm rx); trc=$(waitvm tx)
[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "window pair: exit status rx=$rrc tx=$trc"
grep -q "nettest: window at" "$tmp/rx.out" || fail "rx guest found no window BAR"
result rx | grep -q "frames=$N .*errors=0 lost=0" || fail "window pair: $(result rx)"
[ "$(stat tx xover_window_frames)" = $N ] || fail "window frames: $(stat tx xover_window_frames), expected $N"
[ "$(stat tx xover_bytes_copied)" = 0 ] || fail "bytes_copied=$(stat tx xover_bytes_copied) in window mode"
[ "$(stat tx xover_tx_bytes)" = $((N * 64)) ] || fail "xover_tx_bytes=$(stat tx xover_tx_bytes)"
[ "$(stat tx tx_window_completed)" -ge $N ] || fail "only $(stat tx tx_window_completed) of $N TX slots completed"
[ "$(stat tx xover_remaps)" -gt 0 ] && [ "$(stat rx xover_remaps)" -gt 0 ] || fail "no remaps"
echo "ok: e1000 window pair: $N frames, bytes_copied=0, window_frames=$(stat tx xover_window_frames)," \
	"remaps tx=$(stat tx xover_remaps) rx=$(stat rx xover_remaps), $(result rx | grep -o 'cycles=[0-9]*')"

# Teardown 1: the receiver dies mid-stream; the sender's lent slots come
# back with the link, it finishes (its frames now go nowhere) and exits.
rm -f "$tmp"/*.rc
M=2000000
links() { "$X" status --broker "$BROKER" | sed -n 's/^Links: //p'; }
vmpid() { "$X" status --broker "$BROKER" | awk -v n="$1" '$1 == n { print $2; exit }'; }
vm rx e1000 $RX tx "role=rx count=$M window=1 timeout_ms=20000"; sleep 0.3
vm tx e1000 $TX rx "role=tx count=$M size=64 dst=$RX window=1 timeout_ms=5000"
for i in $(seq 300); do [ "$(links)" = 1 ] && break; sleep 0.1; done
[ "$(links)" = 1 ] || fail "no link before the kill"
sleep 1.5
rxpid=$(vmpid rx)
[ -n "$rxpid" ] || fail "cannot find rx's pid"
kill -9 "$rxpid"
trc=$(waitvm tx)
[ "$trc" != timeout ] || fail "tx hung after its window peer was killed"
grep -q "stats: vm name=tx" "$tmp/tx.out" || fail "tx did not exit cleanly (status $trc)"
[ "$(stat tx xover_links_torn_down)" = 1 ] || fail "tx did not see the link go down"
[ "$(stat tx xover_remaps)" = 4 ] || fail "tx remaps=$(stat tx xover_remaps), expected 4 (2 up, 2 back)"
echo "ok: receiver killed: tx exited (status $trc), window frames=$(stat tx xover_window_frames)," \
	"completed=$(stat tx tx_window_completed), remaps=$(stat tx xover_remaps)"

# Teardown 2: the sender dies mid-stream; the receiver times out (status 1).
rm -f "$tmp"/*.rc
vm rx e1000 $RX tx "role=rx count=$M window=1 timeout_ms=2000"; sleep 0.3
vm tx e1000 $TX rx "role=tx count=$M size=64 dst=$RX window=1 timeout_ms=20000"
for i in $(seq 300); do [ "$(links)" = 1 ] && break; sleep 0.1; done
sleep 1.5
txpid=$(vmpid tx)
[ -n "$txpid" ] || fail "cannot find tx's pid"
kill -9 "$txpid"
rrc=$(waitvm rx)
[ "$rrc" = 1 ] || fail "rx after its window peer was killed: status $rrc, expected 1 (timeout)"
result rx | grep -q "errors=0" || fail "rx saw bad frames: $(result rx)"
[ "$(stat rx xover_remaps)" = 4 ] || fail "rx remaps=$(stat rx xover_remaps), expected 4"
echo "ok: sender killed: rx timed out cleanly after $(result rx | grep -o ' frames=[0-9]*' | cut -d= -f2) frames, remaps=4"
echo PASS
