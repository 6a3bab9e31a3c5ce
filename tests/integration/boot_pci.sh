#!/bin/bash
# labels: integration boot kvm
# Boots the pci guest, which walks bus 0 through 0xCF8/0xCFC: it must find
# exactly the host bridge 8086:1237 at 00:00.0 (no NICs configured).
set -u
B=${XOVER_BUILD:?}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
guest=$B/guests/pci.elf
[ -f "$guest" ] || { echo "SKIP: $guest not built"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; exit 1; }

timeout 300 "$B/xover" run --kernel "$guest" --stats >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc, expected 0"
grep -qx "pci 00:00.0 8086:1237 class 060000" "$tmp/out" || fail "host bridge not listed"
grep -qx "pci: 1 devices" "$tmp/out" || fail "unexpected device count"
grep -q "^stats: pci-config bus=pio reads=[1-9]" "$tmp/err" || fail "no config-space reads counted"
cat "$tmp/out"
echo "PASS"
