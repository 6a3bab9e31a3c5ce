#!/bin/bash
# labels: integration crossover kvm
# Window mode (zero copy), e1000 <-> e1000: both NICs expose a DMA window
# (BAR2) and nettest window=1 puts TX slot k / RX slot k at half offset
# k*2048. 20000 64-byte frames tx -> rx, none lost, no bad frame, and not
# one byte copied: every frame crossed in place (xover_window_frames), the
# halves were remapped onto the link's shared elements (xover_remaps), and
# every TX slot lent to the peer completed, most of them by the receiver's
# process. Then teardown: the receiver
# SIGKILLed mid-stream — the sender gets its slots back and ends (no
# hang, no crash); the sender SIGKILLed — the receiver times out cleanly.
# Then a restarted sender, and a driver reload on either side while the
# halves are shared: nothing damaged, the rest copied. A window link maps
# no RAM of the peer (a copy link does, until it goes down); a sender
# whose rings stay in RAM (window_rings=0) loses nothing, a receiver's
# are out of reach: dropped, counted, said, no hang.
source "$(dirname "$0")/crossover_common.inc"
N=$(emulated_count 20000)
RX=52:54:00:c9:00:01; TX=52:54:00:c9:00:02
NICX=mode=window

window_pair e1000 $N
# The receiver's process completes the slots its guest gave back, on its
# RDT writes (the sender's threads never wake for it); the sender itself
# only what was back by its own TDT writes.
# (tx's copy of the receiver's count may miss the receiver's last walk:
# its guest can see DD, finish and exit before that walk is counted.)
own=$(stat tx tx_window_completed); by_rx=$(stat rx xover_window_completed_for_peer)
by_peer=$(stat tx xover_window_completed_by_peer)
[ $((own + by_rx)) -ge $N ] || fail "only $own + $by_rx of $N TX slots completed"
[ "$by_rx" -gt 0 ] || fail "the receiver completed no TX slot of the sender"
[ "$by_peer" -le "$by_rx" ] || fail "tx counts $by_peer slots completed by rx, rx only $by_rx"
echo "ok: e1000 window pair: $N frames, bytes_copied=0, window_frames=$(stat tx xover_window_frames)," \
	"remaps tx=$(stat tx xover_remaps) rx=$(stat rx xover_remaps), completed by tx=$own by rx=$by_rx," \
	"$(result rx | grep -o 'cycles=[0-9]*')"

# The sender's rings in RAM: the receiver cannot complete its slots and
# leaves them to it (a doorbell); nothing lost, nothing copied.
window_pair e1000 $(emulated_count 5000) 0
echo "ok: e1000 window pair, the sender's rings in RAM: $(result rx | grep -o 'frames=[0-9]* .*lost=[0-9]*')," \
	"completions handed back $(stat rx xover_window_completion_handoffs)"

# Both keep their rings in RAM: what a window link shares does not reach them.
window_pair_rings_in_ram e1000 $(emulated_count 5000)
echo "ok: e1000 window pair with its rings in RAM: $(stat tx xover_dropped_bad_ring) + "\
	"$(stat tx xover_dropped_bad_descriptor) frames dropped at the sender, none reached rx"

# A copy link shares the peer's RAM: each VM maps two (the control for
# shares_ram 1 in window_receiver_killed).
rm -f "$tmp"/*.rc
NICX= vm rx e1000 $RX tx "role=rx count=2000000 timeout_ms=20000"; sleep 0.3
NICX= vm tx e1000 $TX rx "role=tx count=2000000 size=64 dst=$RX timeout_ms=20000"
shares_ram 2
# ... until the link goes down: the survivor unmaps it (SIGKILL the peer).
kill -9 "$(vmpid rx)"
for i in $(seq 100); do [ "$(links)" = 0 ] && [ "$(ram_maps tx)" = 1 ] && break; sleep 0.1; done
[ "$(ram_maps tx)" = 1 ] || fail "tx still maps $(ram_maps tx) guest-RAM memfds after its link went down"
stop_running_vms
wait_vm rx >/dev/null; wait_vm tx >/dev/null
echo "ok: a copy link maps the peer's RAM until it goes down, a window link (below) never"

# Teardown 1: the receiver dies mid-stream; the sender's lent slots come
# back with the link, it finishes (its frames now go nowhere) and exits.
window_receiver_killed e1000
echo "ok: receiver killed: tx exited (status $survivor_rc), window frames=$(stat tx xover_window_frames)," \
	"completed=$(stat tx tx_window_completed), remaps=$(stat tx xover_remaps)"

# Teardown 2: the sender dies mid-stream; the receiver times out (status 1).
rm -f "$tmp"/*.rc
M=2000000
vm rx e1000 $RX tx "role=rx count=$M window=1 timeout_ms=2000"; sleep 0.3
vm tx e1000 $TX rx "role=tx count=$M size=64 dst=$RX window=1 timeout_ms=20000"
kill_mid_stream tx
rrc=$(wait_vm rx)
[ "$rrc" = 1 ] || fail "rx after its window peer was killed: status $rrc, expected 1 (timeout)"
result rx | grep -q "errors=0" || fail "rx saw bad frames: $(result rx)"
[ "$(stat rx xover_remaps)" = 4 ] || fail "rx remaps=$(stat rx xover_remaps), expected 4"
echo "ok: sender killed: rx timed out cleanly after $(result rx | grep -o ' frames=[0-9]*' | cut -d= -f2) frames, remaps=4"
# A sender restarted against a receiver whose ring moved on: copied, not
# shared, and nothing damaged (window_sender_restarted).
window_sender_restarted e1000 5000
echo "ok: sender restarted: 10000 frames, none lost or damaged; the new link copies (TX half private)"
# A driver reload on either side while the halves are shared
# (window_reloaded): nothing damaged, the sender's TX half leaves.
for side in tx rx; do
	window_reloaded e1000 $side $(emulated_count 8000)
	echo "ok: $side reloaded its driver: $(result rx), window frames=$(stat tx xover_window_frames)," \
		"copied=$(stat tx xover_bytes_copied) bytes"
done
echo PASS
