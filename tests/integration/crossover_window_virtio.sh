#!/bin/bash
# labels: integration crossover kvm
# Window mode (zero copy), virtio-net <-> virtio-net: both NICs expose a
# DMA window (BAR2) and nettest window=1 puts TX buffer k (virtio_net_hdr +
# frame) / RX buffer k at half offset k*2048. 20000 64-byte frames tx ->
# rx, none lost, no bad frame, not one byte copied: every frame crossed in
# place (xover_window_frames) and every TX head lent to the peer was used
# once the receiver's guest made its RX buffer available again: mostly by
# the receiver's process, in its RX notify (the sender's threads are not
# woken for it), the rest by the sender's own TX work. The same with both
# VMs started at once. A sender that keeps its rings in RAM loses nothing;
# a receiver that does gets nothing (a window link shares no RAM: dropped,
# counted, said; no hang). A mixed
# e1000 -> virtio-net pair gets a copy link instead. Then the
# receiver is SIGKILLed mid-stream: the sender gets its heads back with
# the link and ends (no hang, no crash). Then a restarted sender, and a
# driver reload on either side while the halves are shared: nothing
# damaged, the rest copied.
source "$(dirname "$0")/crossover_common.inc"
N=$(emulated_count 20000)
RX=52:54:00:c9:01:01; TX=52:54:00:c9:01:02
NICX=mode=window

window_pair virtio $N
# (tx's copy of the receiver's count may miss the receiver's last
# completions: its guest can see them, finish and exit before they count.)
own=$(stat tx tx_window_completed); by_rx=$(stat rx xover_window_completed_for_peer)
by_peer=$(stat tx xover_window_completed_by_peer)
[ $((own + by_rx)) -ge $N ] || fail "only $own + $by_rx of $N TX heads completed"
[ "$by_rx" -gt 0 ] || fail "the receiver completed none of the sender's TX heads"
[ "$by_peer" -le "$by_rx" ] || fail "tx counts $by_peer heads completed by rx, rx only $by_rx"
# Woken about once per 1000 frames, never once per batch (N / 32). An
# emulated host's timing wakes it a little more often: main saw 16-39 for
# 20000 frames there, so the bound scales with it.
wakeups=$(stat tx xover_doorbell_wakeups)
[ "$wakeups" -lt $((N / 1000 * EMULATION_SCALE + 10)) ] || fail "the sender was woken $wakeups times for $N frames"
[ "$(stat tx hostile)" = 0 ] && [ "$(stat rx hostile)" = 0 ] || fail "hostile counters moved"
echo "ok: virtio window pair: $N frames, bytes_copied=0, window_frames=$(stat tx xover_window_frames)," \
	"completed by tx=$own by rx=$by_rx, sender wake-ups=$wakeups, busy=$(stat tx xover_window_busy)," \
	"remaps tx=$(stat tx xover_remaps) rx=$(stat rx xover_remaps), $(result rx | grep -o 'cycles=[0-9]*')"

# Both started at once (as `xover up` does): the sender may find the link
# up before the receiver has moved its RX half onto the shared element;
# its frames wait for that instead of being dropped.
rm -f "$tmp"/*.rc
vm rx virtio $RX tx "role=rx count=$N window=1 timeout_ms=20000"
vm tx virtio $TX rx "role=tx count=$N size=64 dst=$RX window=1 timeout_ms=20000"
rrc=$(wait_vm rx); trc=$(wait_vm tx)
[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "simultaneous start: exit status rx=$rrc tx=$trc"
result rx | grep -q "frames=$N .*errors=0 lost=0" || fail "simultaneous start: $(result rx)"
[ "$(stat tx xover_bytes_copied)" = 0 ] || fail "simultaneous start: bytes_copied=$(stat tx xover_bytes_copied)"
echo "ok: simultaneous start: $N frames, none lost, map waits=$(stat tx xover_window_map_waits)"

# Rings in RAM, against the window contract: the sender's only (lossless,
# its TX completions its own), then both (out of reach: dropped, counted).
window_pair virtio $(emulated_count 5000) 0
echo "ok: virtio window pair, the sender's rings in RAM: $(result rx | grep -o 'frames=[0-9]* .*lost=[0-9]*')"
window_pair_rings_in_ram virtio $(emulated_count 5000)
echo "ok: virtio window pair with its rings in RAM: $(stat tx xover_dropped_bad_ring) +" \
	"$(stat tx xover_dropped_bad_descriptor) frames dropped at the sender, none reached rx"

# e1000 -> virtio-net, both asking for window mode: the models lay frames
# out differently, so the broker makes a copy link (and says so) and the
# windows stay private; the sender's window buffers are copied from.
rm -f "$tmp"/*.rc
vm rx virtio $RX tx "role=rx count=$N timeout_ms=20000"; sleep 0.3
vm tx e1000 $TX rx "role=tx count=$N size=64 dst=$RX window=1 timeout_ms=20000"
rrc=$(wait_vm rx); trc=$(wait_vm tx)
[ "$rrc" = 0 ] && [ "$trc" = 0 ] || fail "mixed pair: exit status rx=$rrc tx=$trc"
result rx | grep -q "frames=$N .*errors=0 lost=0" || fail "mixed pair: $(result rx)"
grep -q "window mode needs the same NIC model" "$tmp/broker.log" || fail "the broker did not say why it chose copy mode"
[ "$(stat tx xover_bytes_copied)" = $((N * 64)) ] || fail "mixed pair: bytes_copied=$(stat tx xover_bytes_copied)"
[ "$(stat tx xover_remaps)" = 0 ] || fail "mixed pair: windows remapped"
echo "ok: mixed e1000 -> virtio window request: copy link, $N frames, none lost"

# The receiver dies mid-stream; the sender's lent heads come back with the
# link, it finishes (its frames now go nowhere) and exits.
window_receiver_killed virtio
[ $(($(stat tx tx_window_completed) + $(stat tx xover_window_completed_by_peer))) = "$(stat tx tx_window_frames)" ] ||
	fail "lent heads not all completed: $(stat tx tx_window_completed) + $(stat tx xover_window_completed_by_peer) of $(stat tx tx_window_frames)"
echo "ok: receiver killed: tx exited (status $survivor_rc), window frames=$(stat tx xover_window_frames)," \
	"completed=$(stat tx tx_window_completed), remaps=$(stat tx xover_remaps)"
# A sender restarted against a receiver whose ring moved on: copied, not
# shared, and nothing damaged (window_sender_restarted).
window_sender_restarted virtio 5000
echo "ok: sender restarted: 10000 frames, none lost or damaged; the new link copies (TX half private)"
# A driver reload on either side while the halves are shared
# (window_reloaded): nothing damaged, the sender's TX half leaves.
for side in tx rx; do
	window_reloaded virtio $side $(emulated_count 8000)
	echo "ok: $side reloaded its driver: $(result rx), window frames=$(stat tx xover_window_frames)," \
		"copied=$(stat tx xover_bytes_copied) bytes"
done
echo PASS
