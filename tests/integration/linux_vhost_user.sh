#!/bin/bash
# labels: slow qemu linux vhost-user
# Linux on both sides of a vhost-user crossover: two Linux guests under
# QEMU (KVM if it can, else TCG), each virtio-net-pci served by `xover
# vhost-user`, linked by the broker. A pings B and sends it a TCP payload
# whose md5 both report; the back-ends' counters show the frames crossed
# over. Linux's own virtio-net driver, not nettest's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"
linux_guest_built || skip "no Linux guest in $LG (run scripts/linux-guest.sh)"
bytes=${TCP_BYTES:-1048576}
mac_a=52:54:00:79:00:01
mac_b=52:54:00:79:00:02
common="xover.ping=5 xover.tcp_bytes=$bytes xover.tcp_port=5001"

vu_broker
vu_backend la "virtio-net,mac=$mac_a,crossover=lb"
vu_backend lb "virtio-net,mac=$mac_b,crossover=la"

t0=$(now)
vu_linux B "$tmp/lb.sock" $mac_b "$common xover.ip=10.0.79.2/24 xover.peer=10.0.79.1 xover.tcp=recv xover.wait=5"
vu_linux A "$tmp/la.sock" $mac_a "$common xover.ip=10.0.79.1/24 xover.peer=10.0.79.2 xover.tcp=send xover.wait=20"
for vm in A B; do
	[ "$(wait_vm $vm 300)" = 0 ] || fail "$vm: QEMU exit status $(cat "$tmp/$vm.rc" 2>/dev/null)"
	grep -aq "XOVER-DONE result=pass" "$tmp/$vm.out" || fail "$vm: $(grep -a 'XOVER-DONE\|FAIL' "$tmp/$vm.out")"
done
grep -aq "XOVER-NET-UP if=eth0 driver=virtio_net" "$tmp/A.out" || fail "A: not Linux's virtio_net driver"
ping=$(grep -a "PING-RESULT" "$tmp/A.out" | head -1)
[[ $ping == *" loss=0% "* ]] || fail "A: $ping"
expected=$({ seq 1 "$bytes" || true; } | head -c "$bytes" | md5sum | cut -d' ' -f1)
for vm in A B; do
	md5=$(grep -a "TCP-RESULT" "$tmp/$vm.out" | sed -n 's/.*md5=\([0-9a-f]*\).*/\1/p')
	[ "$md5" = "$expected" ] || fail "$vm: TCP payload md5 ${md5:-none}, expected $expected"
done
wait_stops la 1
wait_stops lb 1
sent=$(last_stat la xover_tx_frames)
received=$(last_stat lb xover_rx_frames)
[ "${sent:-0}" -gt 100 ] && [ "${received:-0}" -gt 100 ] || fail "few frames crossed over (la sent $sent, lb received $received)"
echo "ok Linux <-> Linux over vhost-user crossover: $ping; $bytes TCP bytes, md5 equal; la crossed $sent frames to lb, $(elapsed "$t0") s"
echo PASS
