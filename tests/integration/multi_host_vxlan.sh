#!/bin/bash
# labels: integration vhost-user qemu network linux
# Several hosts: two "hosts" are network namespaces joined by a veth pair
# with a VXLAN tunnel on top. Each runs its own broker whose switch has a
# tap uplink in a Linux bridge with the host's VXLAN device, and two VMs
# (QEMU VMs on `xover vhost-user` back-ends: the same links and switch
# ports as xover VMs, and no KVM needed). Then:
#  1. VMs on the same host talk over the crossover (the counters show it);
#  2. VMs on different hosts reach each other through the uplink, the
#     bridge and VXLAN, both ways, every frame in order and intact;
#  3. Linux guests on different hosts ping each other (ARP broadcasts
#     included) with no loss;
#  4. killing one host's broker does not stop the other host's traffic.
# On real hosts the uplink tap sits in the host's bridge or OVS, and the
# overlay is OVN's or a CNI's instead of this hand-made VXLAN.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, tap, vxlan)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
command -v ip >/dev/null || skip "needs ip"
. "$(dirname "$0")/vhost_user.inc"

n=$((RANDOM % 200 + 20))
h1=xh1-$$-$n h2=xh2-$$-$n
for h in $h1 $h2; do
	ip netns add "$h" || fail "cannot create a network namespace"
	at_exit "ip netns delete $h"
	ip netns exec "$h" ip link set lo up
done
in1() { ip netns exec "$h1" "$@"; }
in2() { ip netns exec "$h2" "$@"; }
ip link add "xv1-$n" netns "$h1" type veth peer name "xv2-$n" netns "$h2" || fail "veth pair"
in1 ip addr add "192.168.$n.1/24" dev "xv1-$n"; in1 ip link set "xv1-$n" up
in2 ip addr add "192.168.$n.2/24" dev "xv2-$n"; in2 ip link set "xv2-$n" up
# host_net IN SELF OTHER: the host's VXLAN device, bridge and uplink tap.
host_net() {
	local in=$1 self=$2 other=$3 dev=$4
	$in ip link add vx0 type vxlan id 42 local "$self" remote "$other" dstport 4789 dev "$dev" || fail "vxlan"
	$in ip link add br0 type bridge || fail "bridge"
	$in ip tuntap add upl mode tap || fail "tap"
	for l in vx0 upl; do $in ip link set "$l" master br0; $in ip link set "$l" up; done
	$in ip link set br0 up
}
host_net in1 "192.168.$n.1" "192.168.$n.2" "xv1-$n"
host_net in2 "192.168.$n.2" "192.168.$n.1" "xv2-$n"

# Each host: its broker (in its namespace, owning the uplink) and two
# back-ends on that broker's switch, linked to each other.
mkdir -m 700 "$tmp/h1" "$tmp/h2"
start broker1 600 ip netns exec "$h1" "$X" broker --broker "$tmp/h1/b.sock" --uplink tap:upl --log-level info
start broker2 600 ip netns exec "$h2" "$X" broker --broker "$tmp/h2/b.sock" --uplink tap:upl --log-level info
for h in h1 h2; do
	for i in $(seq 100); do "$X" status --broker "$tmp/$h/b.sock" >/dev/null 2>&1 && break; sleep 0.1; done
done
mac() { echo "52:54:00:7b:0$1:0$2"; }  # mac HOST VM
for h in 1 2; do
	BROKER=$tmp/h$h/b.sock vu_backend "v$h-1" "virtio-net,mac=$(mac $h 1),backend=broker,crossover=v$h-2"
	BROKER=$tmp/h$h/b.sock vu_backend "v$h-2" "virtio-net,mac=$(mac $h 2),backend=broker,crossover=v$h-1"
done

# pair NAME RX TX COUNT [TX-ARGS]: nettest from back-end TX's VM to RX's.
pair() {
	local name=$1 rx=$2 tx=$3 count=$4 targs=${5:-}
	local rmac
	rmac=$(mac "${rx:1:1}" "${rx:3:1}")
	vu_qemu "$name-rx" "$tmp/$rx.sock" "$rmac" "nic=virtio role=rx count=$count tsc_khz=$tsc"
	wait_output "$name-rx" "link=up" 60 || fail "$name: the receiver never came up"
	vu_qemu "$name-tx" "$tmp/$tx.sock" "$(mac "${tx:1:1}" "${tx:3:1}")" \
		"nic=virtio role=tx count=$count dst=$rmac size=256 tsc_khz=$tsc $targs"
}

# 1. Same host: the crossover.
pair same v1-2 v1-1 50000
expect same-tx frames=50000
expect same-rx frames=50000 errors=0 lost=0
wait_stops v1-1 1
[ "$(last_stat v1-1 xover_tx_frames)" = 50000 ] || fail "v1-1: xover_tx_frames=$(last_stat v1-1 xover_tx_frames)"
[ "$(last_stat v1-1 xover_tx_backend_frames)" = 0 ] || fail "v1-1 sent same-host frames to the switch"
echo "ok same host: 50000 frames over the crossover"

# 2. Across hosts: switch, uplink, bridge, VXLAN and back. Paced: a tap
# and a tunnel drop what a burst overruns, as a wire would.
cross=${CROSS_COUNT:-3000}
pair h1h2 v2-1 v1-1 "$cross" "gap_ns=200000"
pair h2h1 v1-2 v2-2 "$cross" "gap_ns=200000"
for p in h1h2 h2h1; do
	expect $p-tx frames="$cross"
	expect $p-rx frames="$cross" errors=0 lost=0
done
wait_stops v1-1 2
[ "$(last_stat v1-1 xover_tx_backend_frames)" -ge "$cross" ] || fail "v1-1's frames to host 2 did not take the switch"
echo "ok across hosts: $cross frames each way through the uplink, the bridge and VXLAN"

# 3. Linux on either host: ping across, ARP and all.
linux_guest_built || fail "no Linux guest in $LG (run scripts/linux-guest.sh)"
vu_mac() { mac "${1:1:1}" "${1:3:1}"; }  # vu_mac BACK-END: its VM's MAC
vu_linux lin2 "$tmp/v2-1.sock" "$(vu_mac v2-1)" "xover.ping=5 xover.ip=10.0.$n.2/24 xover.peer=10.0.$n.1 xover.wait=5"
vu_linux lin1 "$tmp/v1-2.sock" "$(vu_mac v1-2)" "xover.ping=5 xover.ip=10.0.$n.1/24 xover.peer=10.0.$n.2 xover.wait=20"
for vm in lin1 lin2; do
	[ "$(wait_vm $vm 300)" = 0 ] || fail "$vm: QEMU exit status $(cat "$tmp/$vm.rc" 2>/dev/null)"
	grep -aq "XOVER-DONE result=pass" "$tmp/$vm.out" || fail "$vm: $(grep -a 'XOVER-DONE\|FAIL' "$tmp/$vm.out")"
done
ping=$(grep -a "PING-RESULT" "$tmp/lin1.out" | head -1)
[[ $ping == *" loss=0% "* ]] || fail "lin1: $ping"
echo "ok Linux across hosts: $ping"

# 4. Host 1's broker dies; host 2's pair goes on.
pair survive v2-2 v2-1 200000 "gap_ns=20000"
wait_output survive-rx "link=up" 60 || fail "survive: no receiver"
sleep 1
pkill -9 -f -- "--broker $tmp/h1/b.sock --uplink" || fail "no broker on host 1 to kill"
expect survive-tx frames=200000
expect survive-rx frames=200000 errors=0 lost=0
echo "ok host 1's broker killed: host 2's 200000 frames all arrived"
echo PASS
