#!/bin/bash
# labels: integration vhost-user qemu kvm
# A QEMU VM is a crossover peer of an xover VM of either model: QEMU's
# virtio-net-pci is served by `xover vhost-user`, and the xover VM's NIC
# names it as its peer. The xover side writes the QEMU guest's RX ring
# and reads its TX ring directly. Lossless both ways, for e1000 and
# virtio-net on the xover side. Needs KVM (the xover VM).
# Environment: COUNT (50000; a quarter where guests are emulated).
. "$(dirname "$0")/lib.sh"
need_xover
. "$(dirname "$0")/vhost_user.inc"

count=${COUNT:-$(emulated_count 50000)}
mac_q=52:54:00:77:00:02
vu_broker
vu_backend qemu "virtio-net,mac=$mac_q,crossover=xvm-e1000+xvm-virtio"

# pair MODEL: xover -> QEMU, then QEMU -> xover, then both at once.
pair() {
	local model=$1 mac_x t0
	mac_x=52:54:00:77:01:0$([ "$model" = e1000 ] && echo 1 || echo 2)
	local vm=xvm-$model nic
	nic="$(nic_model "$model"),mac=$mac_x,crossover=qemu"
	t0=$(now)
	vu_qemu "$model-qrx" "$tmp/qemu.sock" $mac_q "nic=virtio role=rx count=$count tsc_khz=$tsc"
	wait_output "$model-qrx" "link=up" 60 || fail "$model: the QEMU receiver never came up"
	vu_xover "$vm-tx" "$vm" "role=tx count=$count size=512 dst=$mac_q tsc_khz=$tsc" "$nic"
	expect "$vm-tx" frames="$count"
	expect "$model-qrx" frames="$count" errors=0 lost=0
	echo "ok $model: xover -> QEMU, $count frames, $(elapsed "$t0") s"

	t0=$(now)
	# Its link comes up once QEMU's sender has connected to the back-end.
	vu_xover "$vm-rx" "$vm" "role=rx count=$count tsc_khz=$tsc start_timeout_ms=120000" "$nic"
	vu_qemu "$model-qtx" "$tmp/qemu.sock" $mac_q "nic=virtio role=tx count=$count size=512 dst=$mac_x tsc_khz=$tsc"
	expect "$model-qtx" frames="$count"
	expect "$vm-rx" frames="$count" errors=0 lost=0
	[ "$(stat "$vm-rx" xover_rx_frames)" = "$count" ] || fail "$vm: xover_rx_frames=$(stat "$vm-rx" xover_rx_frames)"
	echo "ok $model: QEMU -> xover, $count frames, $(elapsed "$t0") s"

	# Each waits for the other up to 120 s: QEMU's guest may still be
	# booting when xover's is up (slow where the host is emulated).
	vu_qemu "$model-qboth" "$tmp/qemu.sock" $mac_q "nic=virtio role=txrx count=$count dst=$mac_x tsc_khz=$tsc start_timeout_ms=120000"
	vu_xover "$vm-both" "$vm" "role=txrx count=$count dst=$mac_q tsc_khz=$tsc start_timeout_ms=120000" "$nic"
	expect "$model-qboth" tx_frames="$count" frames="$count" errors=0 lost=0
	expect "$vm-both" tx_frames="$count" frames="$count" errors=0 lost=0
	echo "ok $model: both ways at once"
}

pair e1000
pair virtio
echo PASS
