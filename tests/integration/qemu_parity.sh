#!/bin/bash
# labels: integration qemu kvm
# Runs each tiny guest under xover and under QEMU (-enable-kvm) and compares
# what the guest printed. QEMU's isa-debug-exit turns `outb v` into exit
# status (v << 1) | 1, xover into v. The pci guest sees different machines
# (QEMU's pc has more devices), so only the host bridge line is compared.
set -u
B=${XOVER_BUILD:?}
QEMU=${QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || { echo "SKIP: $QEMU not installed"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
failures=0
ran=0

# Guest lines only: QEMU's firmware (SeaBIOS, iPXE) also prints to the serial port.
# The first guest line may follow firmware text on the same line ("Booting
# from ROM..hello"), so lines are cut at the pattern, which is unanchored.
guest_lines() { tr -d '\r' <"$1" | grep -aoE "($2).*" || true; }

compare() {
	local name=$1 cmdline=$2 pattern=$3
	local elf=$B/guests/$name.elf
	[ -f "$elf" ] || { echo "skip $name: not built"; return; }
	ran=$((ran + 1))
	timeout 300 "$B/xover" run --kernel "$elf" --cmdline "$cmdline" >"$tmp/x.out" 2>"$tmp/x.err"
	local xrc=$?
	timeout 300 "$QEMU" -enable-kvm -cpu qemu64 -m 128M -kernel "$elf" -append "$cmdline" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 -nographic -no-reboot -monitor none \
		>"$tmp/q.out" 2>"$tmp/q.err" </dev/null
	local qrc=$?
	guest_lines "$tmp/x.out" "$pattern" >"$tmp/x.lines"
	guest_lines "$tmp/q.out" "$pattern" >"$tmp/q.lines"
	if [ $(((xrc << 1) | 1)) -ne $qrc ]; then
		echo "FAIL $name: xover exit $xrc vs QEMU exit $qrc"; failures=$((failures + 1)); return
	fi
	if [ ! -s "$tmp/x.lines" ] || ! diff -u "$tmp/q.lines" "$tmp/x.lines"; then
		echo "FAIL $name: output differs (or is empty)"; cat "$tmp/x.err"; failures=$((failures + 1)); return
	fi
	echo "ok $name: exit $xrc (QEMU $qrc), $(wc -l <"$tmp/x.lines") line(s) equal"
}

compare hello "parity check" "hello from|cmdline:"
compare irq "" "irq:"
compare pci "" "pci 00:00\\.0 "

[ $ran -gt 0 ] || { echo "SKIP: no guests built"; exit 77; }
[ $failures -eq 0 ] && echo PASS || exit 1
