#!/bin/bash
# labels: integration linux slow kvm vhost-user
# Linux in xover VMs whose virtio-net queues an external vhost-user
# back-end serves (--nic virtio-net,backend=vhost-user:PATH): two
# `xover vhost-user` back-ends, crossed over to each other, serve one
# Linux VM each. The guests ping each other 10 times with 0% loss, which
# takes Linux's own driver and its interrupts (MSI-X, NAPI).
# The back-ends' calls are the vectors' irqfds: the interrupts reach the
# guest in the kernel, so the front-end's I/O thread delivers (almost)
# none of them (vhost_user_calls), while the back-ends crossed frames.
source "$(dirname "$0")/linux_common.inc"

# backend NAME MAC PEER: `xover vhost-user` serving VM NAME on $tmp/NAME.sock.
backend() {
	start "$1" "$LINUX_TIMEOUT" "$X" vhost-user --socket "$tmp/$1.sock" --name "$1" \
		--nic "virtio-net,mac=$2,crossover=$3" --broker "$BROKER" --stats=all
	wait_marker "$1" "^vhost-user: .* serves $1 " 20 || fail "$1: the vhost-user back-end did not listen"
}
start broker "$LINUX_TIMEOUT" "$X" broker --broker "$BROKER"
for _ in $(seq 100); do "$X" status --broker "$BROKER" >/dev/null 2>&1 && break; sleep 0.1; done
mac_a=52:54:00:6d:00:01
mac_b=52:54:00:6d:00:02
backend fa $mac_a fb
backend fb $mac_b fa

t0=$(now)
linux_vm a vmlinux "virtio-net,mac=$mac_a,backend=vhost-user:$tmp/fa.sock" \
	"xover.ip=10.109.1.1/24 xover.peer=10.109.1.2 xover.ping=10 xover.wait=5"
linux_vm b vmlinux "virtio-net,mac=$mac_b,backend=vhost-user:$tmp/fb.sock" \
	"xover.ip=10.109.1.2/24 xover.peer=10.109.1.1 xover.ping=10 xover.wait=15"
check_done a
check_done b
check_ping a
check_ping b
for vm in a b; do
	[ "$(field "$(marker $vm XOVER-NET-UP)" driver)" = virtio_net ] || fail "$vm: $(marker $vm XOVER-NET-UP)"
	s=$(nic_stats $vm)
	calls=$(field "$s" vhost_user_calls) routes=$(field "$s" vhost_user_call_routes)
	[ "${routes:-0}" -ge 2 ] 2>/dev/null || fail "$vm: the back-end never got a call fd: $s"
	# Each ping's echo is an RX interrupt: 10 or more per guest through
	# the I/O thread had the calls not been irqfds.
	[ "${calls:-99}" -lt 5 ] 2>/dev/null || fail "$vm: $calls back-end calls went through the I/O thread: $s"
	echo "$vm: vhost_user_calls=$calls vhost_user_call_routes=$routes"
done
# The back-ends end with their VMs' sessions; their counters show the crossing.
sleep 1
crossed=$(grep -a '^stats: ' "$tmp/fa.out" | grep -ao ' xover_tx_frames=[0-9]*' | tail -1 | cut -d= -f2)
[ "${crossed:-0}" -ge 10 ] || fail "fa crossed ${crossed:-no} frames to fb"
echo "ok Linux <-> Linux, each on a vhost-user back-end: fa crossed $crossed frames, $(elapsed "$t0") s"
echo PASS
