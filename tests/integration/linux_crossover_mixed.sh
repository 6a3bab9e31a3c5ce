#!/bin/bash
# labels: integration linux slow kvm
# Two Linux guests (scripts/linux-guest.sh) with Linux's own drivers,
# e1000↔virtio-net over a copy-mode crossover: 10 pings each way, 0% loss,
# and a 1 MiB TCP transfer whose md5 both sides report; guest B boots the
# bzImage (Linux boot protocol), A the PVH vmlinux.
source "$(dirname "$0")/linux_common.inc"
run_pair a3 e1000 vmlinux virtio-net bzImage 1048576
echo PASS
