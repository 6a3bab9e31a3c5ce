#!/bin/bash
# labels: integration linux slow kvm
# A Linux guest (virtio-net, Linux's driver) and a tiny-kernel guest
# (nettest role=responder, our own e1000 driver; it answers ARP and ICMP
# echo) on one copy-mode crossover: Linux pings the tiny kernel 10 times
# with 0% loss, and the tiny kernel counts the echoes it answered.
source "$(dirname "$0")/linux_common.inc"
[ -f "$B/guests/nettest.elf" ] || { echo "SKIP: nettest.elf not built"; exit 77; }

t0=$(now)
linux_vm lin vmlinux "virtio-net,mac=52:54:00:6c:c0:01,crossover=tiny" \
	"xover.ip=10.97.1.1/24 xover.peer=10.97.1.2 xover.ping=10"
# The responder ends after timeout_ms without frames, so it starts once
# Linux is nearly ready to talk (and Linux's peer wait covers the gap).
wait_marker lin XOVER-NET-UP 300 || fail "Linux never configured its NIC"
tiny_vm tiny "e1000,mac=52:54:00:6c:c0:02,crossover=lin" "role=responder ip=10.97.1.2 timeout_ms=20000"
check_done lin
check_ping lin
rc=$(wait_vm tiny)
[ "$rc" = 0 ] || fail "tiny: exit status $rc"
res=$(grep -a '^RESULT' "$tmp/tiny.out")
[ "$(field "$res" icmp)" -ge 10 ] 2>/dev/null || fail "tiny: $res"
echo "tiny: $res"
echo "ok: Linux virtio-net <-> tiny e1000 over a crossover, $(elapsed "$t0") s"
echo PASS
