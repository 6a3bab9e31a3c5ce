#!/bin/bash
# labels: integration boot kvm
# Boots the irq guest: it enables the UART's THR-empty interrupt (IER.ETBEI,
# MCR.OUT2), routes IRQ 4 through the IOAPIC and waits for the vector.
set -u
B=${XOVER_BUILD:?}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
guest=$B/guests/irq.elf
[ -f "$guest" ] || { echo "SKIP: $guest not built"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; exit 1; }

timeout 300 "$B/xover" run --kernel "$guest" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc, expected 0"
grep -q "^irq: received vector 0x[0-9a-f]* from IRQ4$" "$tmp/out" || fail "no interrupt seen"
cat "$tmp/out"
echo "PASS"
