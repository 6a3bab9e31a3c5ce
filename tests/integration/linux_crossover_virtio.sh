#!/bin/bash
# labels: integration linux slow kvm
# Two Linux guests (scripts/linux-guest.sh) with Linux's own drivers,
# virtio-net↔virtio-net over a copy-mode crossover: 10 pings each way,
# 0% loss; both boot the PVH vmlinux.
source "$(dirname "$0")/linux_common.inc"
run_pair a2 virtio-net vmlinux virtio-net vmlinux 0
echo PASS
