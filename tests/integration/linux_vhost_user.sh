#!/bin/bash
# labels: slow qemu linux vhost-user
# Linux on both sides of a vhost-user crossover: two Linux guests under
# QEMU (KVM if it can, else TCG), each virtio-net-pci served by `xover
# vhost-user`, linked by the broker. A pings B and sends it a TCP payload
# whose md5 both report; the back-ends' counters show the frames crossed
# over. Linux's own virtio-net driver, not nettest's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vhost_user.inc"
LG=${XOVER_LINUX_GUEST:-${XOVER_CACHE:-$HOME/.cache/xover}/linux-guest}
for f in vmlinux initramfs.cpio; do
	[ -s "$LG/$f" ] || skip "no $LG/$f (run scripts/linux-guest.sh)"
done
bytes=${TCP_BYTES:-1048576}
mac_a=52:54:00:79:00:01
mac_b=52:54:00:79:00:02
cmdline="console=ttyS0 clearcpuid=smap,smep,popcnt,xsave nofsgsbase mitigations=off tsc=reliable panic=-1 quiet"
cmdline="$cmdline xover.ping=5 xover.tcp_bytes=$bytes xover.tcp_port=5001"
# QEMU 7.2 without KVM crashes (SIGSEGV in msix_set_vector_notifiers) when a
# vhost-user device starts while the guest uses MSI-X; under TCG the guests
# use INTx (pci=nomsi). With KVM they use MSI-X.
[ -r /dev/kvm ] && [ -w /dev/kvm ] || cmdline="$cmdline pci=nomsi"

vu_broker
vu_backend la "virtio-net,mac=$mac_a,crossover=lb"
vu_backend lb "virtio-net,mac=$mac_b,crossover=la"

# linux NAME SOCKET MAC CMDLINE: the Linux guest under QEMU on a back-end.
linux() {
	start "$1" 300 "$QEMU" -accel kvm -accel tcg -cpu qemu64,vendor=GenuineIntel -m 256M \
		-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
		-nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$LG/vmlinux" -initrd "$LG/initramfs.cpio" -append "$cmdline $4" \
		-chardev "socket,id=c0,path=$2,reconnect=1" -netdev vhost-user,id=n0,chardev=c0 \
		-device "virtio-net-pci,disable-legacy=on,netdev=n0,mac=$3,romfile="
}
t0=$(now)
linux B "$tmp/lb.sock" $mac_b "xover.ip=10.0.79.2/24 xover.peer=10.0.79.1 xover.tcp=recv xover.wait=5"
linux A "$tmp/la.sock" $mac_a "xover.ip=10.0.79.1/24 xover.peer=10.0.79.2 xover.tcp=send xover.wait=20"
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
