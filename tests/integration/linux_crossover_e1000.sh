#!/bin/bash
# labels: integration linux slow kvm
# Two Linux guests (scripts/linux-guest.sh) with Linux's own drivers,
# e1000↔e1000 over a copy-mode crossover: 10 pings each way, 0% loss;
# both boot the PVH vmlinux.
source "$(dirname "$0")/linux_common.inc"
run_pair a1 e1000 vmlinux e1000 vmlinux 0
echo PASS
