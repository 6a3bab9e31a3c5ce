#!/bin/bash
# labels: integration vhost-user qemu network
# The vhost-user back-end's NIC backend is opened once, before its
# sandbox: a tap works under the default seccomp profile (kill), and
# keeps working across QEMU sessions. In a private network namespace with
# a tap: a QEMU VM sends frames to a MAC no VM has; they come out of the
# tap (its rx counter); a second QEMU VM on the same back-end does it again.
. "$(dirname "$0")/lib.sh"
need_netns xover-vu-tap
. "$(dirname "$0")/vhost_user.inc"
tap=xvt$n
ip netns exec "$ns" ip tuntap add "$tap" mode tap || fail "ip tuntap add $tap"
ip netns exec "$ns" ip link set "$tap" up
rx_packets() { ip netns exec "$ns" cat "/sys/class/net/$tap/statistics/rx_packets"; }

mac=52:54:00:7f:20:01
start qt 600 ip netns exec "$ns" "$X" vhost-user --socket "$tmp/qt.sock" --name qt \
	--nic "virtio-net,mac=$mac,backend=tap:$tap" --log-level info --stats=all
wait_output qt "^vhost-user: .* serves qt " 10 || fail "the back-end did not listen"
for run in 1 2; do
	before=$(rx_packets)
	vu_qemu tx$run "$tmp/qt.sock" $mac "nic=virtio role=tx count=2000 size=256 gap_ns=20000 dst=52:54:00:7f:20:99 tsc_khz=$tsc"
	expect tx$run frames=2000
	after=$(rx_packets)
	[ $((after - before)) -ge 2000 ] || fail "session $run: the tap received $((after - before)) of 2000 frames"
	echo "ok session $run: 2000 frames out of the tap ($before -> $after)"
done
[ -s "$tmp/qt.rc" ] && fail "the back-end ended (status $(cat "$tmp/qt.rc")): its sandbox forbade the tap?"
echo PASS
