#!/bin/bash
# labels: integration vhost-user qemu
# The crossover's control plane under QEMU VMs (xover vhost-user back-ends,
# no KVM needed), as for xover VMs:
#  1. auto wiring: both back-ends say crossover=auto with the broker's
#     switch as backend; their VMs first talk through the switch, the
#     broker notices and links them, and the frames that went either way
#     arrive whole and in order (the switch path is drained first);
#  2. broker restart: the broker is SIGKILLed mid-stream; the link keeps
#     carrying frames, both back-ends register again with a new broker
#     (under their seccomp profile), which adopts the link;
#  3. after it, a new pair links as usual.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"

mac_a=52:54:00:7f:10:01
mac_b=52:54:00:7f:10:02
vu_broker
vu_backend qa "virtio-net,mac=$mac_a,backend=broker,crossover=auto"
vu_backend qb "virtio-net,mac=$mac_b,backend=broker,crossover=auto"

# 1. auto wiring
count=${COUNT:-100000}
vu_qemu auto-rx "$tmp/qb.sock" $mac_b "nic=virtio role=rx count=$count tsc_khz=$tsc"
wait_output auto-rx "link=up" 60 || fail "the receiver never came up"
vu_qemu auto-tx "$tmp/qa.sock" $mac_a "nic=virtio role=tx count=$count size=128 gap_ns=2000 dst=$mac_b tsc_khz=$tsc"
expect auto-tx frames="$count"
expect auto-rx frames="$count" errors=0 lost=0
wait_stops qa 1
switched=$(last_stat qa xover_tx_backend_frames) crossed=$(last_stat qa xover_tx_frames)
[ "${crossed:-0}" -gt 0 ] || fail "qa never sent over an auto link (xover_tx_frames=$crossed)"
grep -q "link .* up: q[ab]#0 <-> q[ab]#0 (copy, auto)" "$tmp/broker.out" || fail "the broker never made an auto link"
echo "ok auto wiring: $count frames in order, $switched through the switch first, $crossed over the auto link"

# 2. broker restart mid-stream; the links stay, the back-ends register again.
vu_qemu r-rx "$tmp/qb.sock" $mac_b "nic=virtio role=rx count=400000 tsc_khz=$tsc"
wait_output r-rx "link=up" 60 || fail "the second receiver never came up"
vu_qemu r-tx "$tmp/qa.sock" $mac_a "nic=virtio role=tx count=400000 size=128 gap_ns=10000 dst=$mac_b tsc_khz=$tsc"
for i in $(seq 300); do grep -q "link .* up" "$tmp/qa.out" && [ "$(grep -c 'link .* up' "$tmp/qa.out")" -ge 2 ] && break; sleep 0.1; done
sleep 1
pkill -9 -f -- "broker --broker $BROKER" || fail "no broker to kill"
mv "$tmp/broker.out" "$tmp/broker-killed.log"
rm -f "$tmp/broker.rc"
sleep 1
vu_broker
for b in qa qb; do
	wait_output $b "registered again with the broker" 20 || fail "$b never registered with the new broker"
done
expect r-tx frames=400000
expect r-rx frames=400000 errors=0 lost=0
grep -q "adopted" "$tmp/broker.out" || fail "the new broker adopted no link"
echo "ok broker killed mid-stream: 400000 frames, none lost; both back-ends registered again and the link was adopted"

# 3. a new pair on the new broker
vu_qemu n-rx "$tmp/qb.sock" $mac_b "nic=virtio role=rx count=20000 tsc_khz=$tsc"
wait_output n-rx "link=up" 60 || fail "the third receiver never came up"
vu_qemu n-tx "$tmp/qa.sock" $mac_a "nic=virtio role=tx count=20000 size=128 gap_ns=2000 dst=$mac_b tsc_khz=$tsc"
expect n-tx frames=20000
expect n-rx frames=20000 errors=0 lost=0
echo "ok a new pair after the restart: 20000 frames"
echo PASS
